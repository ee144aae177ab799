import { expect } from 'chai';
import { LatestPerTopic } from '../../../src/common/zmq/latest-per-topic.js';

describe('LatestPerTopic (latest wins per topic within one burst)', () => {
  const turn = () => new Promise((r) => setImmediate(r));

  it('hands on only the newest message of each topic read in one burst, ordered by their newest message', async () => {
    const got: string[] = [];
    const inbox = new LatestPerTopic((topic, body) => got.push(`${topic}=${body.toString()}`));
    for (const [t, b] of [
      ['a', '1'],
      ['b', '1'],
      ['a', '2'],
      ['c', '1'],
      ['a', '3'],
    ] as const)
      inbox.push(t, Buffer.from(b));
    expect(got, 'nothing before the burst is over').to.deep.equal([]);
    await turn();
    expect(got).to.deep.equal(['b=1', 'c=1', 'a=3']);
    expect(inbox.superseded).to.equal(2);
  });

  it('a message after the burst is handed on by itself, even for a topic already delivered', async () => {
    const got: string[] = [];
    const inbox = new LatestPerTopic((topic, body) => got.push(`${topic}=${body.toString()}`));
    inbox.push('a', Buffer.from('1'));
    await turn();
    inbox.push('a', Buffer.from('2'));
    await turn();
    expect(got).to.deep.equal(['a=1', 'a=2']);
    expect(inbox.superseded).to.equal(0);
  });

  it('hands a large burst on a few at a time, so other sockets are served in between; later messages still replace waiting ones', async () => {
    const got: string[] = [];
    const inbox = new LatestPerTopic((topic, body) => got.push(`${topic}=${body.toString()}`));
    for (let i = 0; i < 100; i++) inbox.push(`t${i}`, Buffer.from('old'));
    await turn();
    expect(got.length, 'one chunk per turn').to.be.within(1, 99);
    inbox.push('t99', Buffer.from('new'));
    for (let i = 0; i < 10 && got.length < 100; i++) await turn();
    expect(got).to.have.length(100);
    expect(got.filter((g) => g.startsWith('t99='))).to.deep.equal(['t99=new']);
  });
});
