// Small IPv4 arithmetic for the rules and derived views (no dependency: the
// policy only needs containment, overlap and host addresses of a /30).

export interface Cidr4 {
  readonly base: number; // network address as an unsigned 32-bit int
  readonly prefix: number;
}

export function ipv4ToInt(address: string): number {
  const parts = address.split('.').map(Number);
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

export function intToIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

function mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export function parseCidr4(cidr: string): Cidr4 {
  const [address, len] = cidr.split('/');
  const prefix = Number(len);
  return { base: (ipv4ToInt(address!) & mask(prefix)) >>> 0, prefix };
}

/** True when the address part has bits set beyond the prefix (10.0.0.1/8). */
export function hasHostBits(cidr: string): boolean {
  const [address] = cidr.split('/');
  return ipv4ToInt(address!) !== parseCidr4(cidr).base;
}

export function formatCidr4(c: Cidr4): string {
  return `${intToIpv4(c.base)}/${c.prefix}`;
}

/** inner lies inside (or equals) outer. */
export function cidrWithin(inner: Cidr4, outer: Cidr4): boolean {
  return inner.prefix >= outer.prefix && (inner.base & mask(outer.prefix)) >>> 0 === outer.base;
}

export function cidrsOverlap(a: Cidr4, b: Cidr4): boolean {
  return cidrWithin(a, b) || cidrWithin(b, a);
}

export function addressIn(address: string, c: Cidr4): boolean {
  return (ipv4ToInt(address) & mask(c.prefix)) >>> 0 === c.base;
}

/** The n-th address of a network (n = 1 is the first host of a /30). */
export function nthAddress(c: Cidr4, n: number): string {
  return intToIpv4((c.base + n) >>> 0);
}

export const LOOPBACK_V4: Cidr4 = parseCidr4('127.0.0.0/8');
