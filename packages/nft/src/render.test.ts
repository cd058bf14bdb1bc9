import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { needTool, skipUnless } from '@leakless/testing';
import { normalizeNftListing } from '@leakless/selftest';
import type { Rule, Table } from './ast.js';
import { renderNft, renderRule, renderTable } from './render.js';

// Every kind of match and verdict the model has, in one table.
const table: Table = {
  family: 'inet',
  name: 'lk_render_test',
  chains: [
    {
      name: 'nat_output',
      why: 'a chain’s reason, <in> any characters but a line break',
      base: { type: 'nat', hook: 'output', priority: -100, policy: 'accept' },
      rules: [
        {
          match: { oifname: { name: 'lo' }, daddr: { addrs: ['127.0.0.1'] }, protocol: 'tcp', dport: { ports: [9050] } },
          verdict: { kind: 'dnat', address: '10.200.1.1', port: 9050 },
          clause: 'tor.socksPorts[3] via DNAT',
        },
      ],
    },
    {
      name: 'nat_postrouting',
      base: { type: 'nat', hook: 'postrouting', priority: 100, policy: 'accept' },
      rules: [{ match: { oifname: { name: 'veth0' }, ctStatus: ['dnat'] }, verdict: { kind: 'masquerade' }, clause: 'masquerade of the DNAT' }],
    },
    {
      name: 'input',
      base: { type: 'filter', hook: 'input', priority: 'filter', policy: 'drop' },
      rules: [
        {
          match: { iifname: { name: 'veth0' }, saddr: { addrs: ['10.200.1.1'] }, protocol: 'tcp', sport: { ports: [9050] }, ctState: ['established'] },
          verdict: { kind: 'accept' },
          clause: 'replies',
        },
        { match: { protocol: 'udp', sport: { ports: [53, 5353] }, dport: { ports: [1024], negate: true } }, verdict: { kind: 'drop' }, clause: 'both ports' },
      ],
    },
    {
      name: 'postrouting',
      base: { type: 'filter', hook: 'postrouting', priority: 110, policy: 'accept' },
      rules: [{ match: { oifname: { name: 'veth0' }, saddr: { addrs: ['10.200.1.2'], negate: true } }, verdict: { kind: 'drop' }, clause: 'anti-spoofing' }],
    },
    {
      name: 'output',
      base: { type: 'filter', hook: 'output', priority: 0, policy: 'drop' },
      rules: [
        { match: { nfproto: 'ipv6' }, verdict: { kind: 'reject', icmpx: 'admin-prohibited' }, clause: 'ipv6.enabled false' },
        { match: { oif: { name: 'lo' }, protocol: 'tcp', tcpSyn: true, skuid: 1000 }, verdict: { kind: 'reject' }, log: true, clause: 'logged refusal' },
        {
          match: { ctMark: { marks: [0] }, ctState: ['new'] },
          setCtMark: {
            byUid: [
              { uid: 1000, mark: 0x3e9 },
              { uid: 0, mark: 1 },
            ],
          },
          verdict: { kind: 'continue' },
          clause: 'stamp by uid',
        },
        { match: { ctMark: { marks: [0] }, ctState: ['new'] }, setCtMark: { mark: 0xffffffff }, verdict: { kind: 'continue' }, clause: 'stamp the rest' },
        {
          match: { ctDirection: 'original', ctMark: { marks: [0xffffffff], negate: true }, owner: { pairs: [{ uid: 1000, mark: 0x3e9 }], negate: true } },
          verdict: { kind: 'drop' },
          clause: 'not the owner',
        },
        { match: { ctDirection: 'original', ctMark: { marks: [0xffffffff] }, skuids: { uids: [1000, 0] } }, verdict: { kind: 'drop' }, clause: 'uid set' },
        {
          match: {
            saddr: { addrs: ['127.0.0.1', '10.200.1.1'] },
            protocol: 'tcp',
            sport: { ports: [9050] },
            ctDirection: 'reply',
            skuids: { uids: [106, 0], negate: true },
          },
          verdict: { kind: 'drop' },
          clause: 'only tor answers',
        },
        { match: { iifname: { name: 'veth0' }, ctState: ['new'] }, setCtMark: { mark: 0xfffffffe }, verdict: { kind: 'accept' }, clause: 'stamp and accept' },
        { match: {}, verdict: { kind: 'reject', icmpx: 'admin-prohibited' }, clause: 'nothing else' },
      ],
    },
  ],
};

describe('renderTable', () => {
  it('writes every rule with a counter and its clause comment, statements in the order nft lists them', () => {
    const text = renderTable(table);
    expect(text).toContain('oifname "lo" ip daddr 127.0.0.1 tcp dport 9050 counter dnat ip to 10.200.1.1:9050 comment "tor.socksPorts[3] via DNAT"');
    expect(text).toContain('oifname "veth0" ct status dnat counter masquerade comment "masquerade of the DNAT"');
    expect(text).toContain('iifname "veth0" ip saddr 10.200.1.1 tcp sport 9050 ct state established counter accept comment "replies"');
    expect(text).toContain('udp sport { 53, 5353 } udp dport != 1024 counter drop comment "both ports"');
    expect(text).toContain('meta nfproto ipv6 counter reject with icmpx admin-prohibited comment "ipv6.enabled false"');
    expect(text).toContain('\t\tcounter reject with icmpx admin-prohibited comment "nothing else"');
    expect(text).toContain('\ttype nat hook output priority -100; policy accept;');
    expect(text).toContain('ct mark 0x00000000 ct state new counter ct mark set meta skuid map { 0 : 0x00000001, 1000 : 0x000003e9 } comment "stamp by uid"');
    expect(text).toContain('ct mark 0x00000000 ct state new counter ct mark set 0xffffffff comment "stamp the rest"');
    expect(text).toContain('ct direction original ct mark != 0xffffffff meta skuid . ct mark != { 1000 . 0x000003e9 } counter drop comment "not the owner"');
    expect(text).toContain('ct direction original ct mark 0xffffffff meta skuid { 0, 1000 } counter drop comment "uid set"');
    expect(text).toContain('ip saddr { 10.200.1.1, 127.0.0.1 } tcp sport 9050 ct direction reply meta skuid != { 0, 106 } counter drop');
    expect(text).toContain('iifname "veth0" ct state new counter ct mark set 0xfffffffe accept comment "stamp and accept"');
    const lines = text.split('\n');
    expect(lines[lines.indexOf('\tchain nat_output {') - 1]).toBe('\t# a chain’s reason, <in> any characters but a line break');
  });

  it('lists rejects the way nft prints them, and leaves the chains’ reasons out of the listing', () => {
    const listing = renderTable(table, { listing: true });
    expect(listing).toContain(
      'oif "lo" tcp flags syn / fin,syn,rst,ack meta skuid 1000 counter packets 0 bytes 0 log prefix "leakless reject: " level debug flags skuid reject comment "logged refusal"',
    );
    expect(listing).toContain('type filter hook output priority filter; policy drop;');
    expect(listing).toContain('type nat hook postrouting priority srcnat; policy accept;');
    expect(listing).toContain('type nat hook output priority -100; policy accept;');
    expect(listing).toContain('reject with icmpx admin-prohibited comment "nothing else"');
    expect(listing).not.toContain('#');
  });

  it('refuses what the model cannot say safely', () => {
    const bad = (r: Partial<Rule>) => () => renderRule({ match: {}, verdict: { kind: 'accept' }, clause: 'x', ...r });
    expect(bad({ match: { sport: { ports: [53] } } })).toThrow(/needs a protocol/);
    expect(bad({ match: { protocol: 'icmp', sport: { ports: [53] } } })).toThrow(/icmp has no ports/);
    expect(bad({ match: { ctStatus: [] } })).toThrow(/empty ct status/);
    expect(bad({ clause: '' })).toThrow(/clause comment/);
    expect(bad({ verdict: { kind: 'continue' } })).toThrow(/neither a verdict nor a statement/);
    expect(bad({ match: { skuid: 1, owner: { pairs: [{ uid: 1, mark: 2 }] } } })).toThrow(/one uid match/);
    expect(bad({ match: { ctMark: { marks: [2 ** 32] } } })).toThrow(/bad mark/);
    expect(bad({ setCtMark: { byUid: [] } })).toThrow(/empty owner set/);
    expect(
      bad({
        setCtMark: {
          byUid: [
            { uid: 1, mark: 2 },
            { uid: 1, mark: 3 },
          ],
        },
      }),
    ).toThrow(/two marks/);
    expect(() => renderTable({ ...table, chains: [{ ...table.chains[0]!, why: 'two\nlines' }] })).toThrow(/line break/);
    expect(() => renderNft(table, ['ok', 'a\nflush ruleset'])).toThrow(/line break/);
  });
});

describe('renderNft', () => {
  it('replaces the one table in one transaction, below the header (an empty header line stays empty)', () => {
    const text = renderNft(table, ['first', '', 'second']);
    expect(text.split('\n').slice(0, 7)).toEqual([
      '#!/usr/sbin/nft -f',
      '# first',
      '',
      '# second',
      'table inet lk_render_test {}',
      'delete table inet lk_render_test',
      'table inet lk_render_test {',
    ]);
    expect(text.endsWith('}\n')).toBe(true);
  });
});

const skip = skipUnless(
  'nft round trips (@leakless/nft)',
  needTool('unshare', ['-rn', 'nft', '--version'], 'nft in a throwaway user+network namespace; tools/leakless/install-deps.sh test installs nftables'),
);

describe.skipIf(skip)('the kernel (unshare -rn nft)', () => {
  it('loads the file and lists exactly what renderTable(listing) says, every kind of match and verdict included', () => {
    const script = 'nft -f /dev/stdin && nft list table inet lk_render_test';
    const r = spawnSync('unshare', ['-rn', 'sh', '-c', script], { input: renderNft(table, ['test']), encoding: 'utf8', timeout: 30_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(normalizeNftListing(r.stdout)).toBe(normalizeNftListing(renderTable(table, { listing: true })));
  });
});
