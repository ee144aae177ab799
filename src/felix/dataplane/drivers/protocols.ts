/** Protocol names as iptables-save and ipset print them: from /etc/protocols, else the built-in table. */
import fs from 'node:fs';
import { DEFAULT_PROTOCOL_NAMES, ProtocolNames, parseProtocols } from '../render/acl.js';

export function readProtocolNames(file = '/etc/protocols'): ProtocolNames {
  try {
    return parseProtocols(fs.readFileSync(file, 'utf8'));
  } catch {
    return DEFAULT_PROTOCOL_NAMES;
  }
}
