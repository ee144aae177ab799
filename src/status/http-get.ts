#!/usr/bin/env node
/**
 * `node http-get.js URL TIMEOUT_MS`: one GET, answered on stdout as
 * `{"code":N,"text":"…"}` (code 0: no answer, `text` says why). It lets a
 * process in one network namespace ask a daemon that listens on 127.0.0.1 in
 * another: `ip netns exec NS node http-get.js …` (see {@link netnsGet}).
 */
import { httpGet } from './daemons.js';

const [url, timeout] = process.argv.slice(2);
httpGet(url ?? '', Number(timeout ?? 3000)).then((r) => process.stdout.write(`${JSON.stringify(r)}\n`));
