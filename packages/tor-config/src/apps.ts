// Which SocksPort each kind of program uses (the Tails stream-isolation
// design): SOCKS-aware desktop programs and torsocks-wrapped commands the
// desktop user's loopback port, APT its own port as Debian's _apt user.
import { APT_SOURCES_LIST, type Policy, type TorListener, type User } from '@leakless/policy';

/** Debian's apt drops privileges to this user for downloads (apt's sandbox user, not a policy choice). */
export const APT_USER = '_apt';
export const ENVIRONMENT = '/etc/environment';
export const TORSOCKS_CONF = '/etc/tor/torsocks.conf';
export const APT_PROXY_CONF = '/etc/apt/apt.conf.d/50leakless-tor';
/** The sources tor-config writes; apt also reads sources.list.d, which the image leaves empty. */
export const APT_SOURCES = APT_SOURCES_LIST;
/** deb.debian.org's CDN, reached through tor like Tails' tor+https sources. */
export const DEBIAN_MIRROR = { host: 'deb.debian.org', archive: 'debian', security: 'debian-security' } as const;

/**
 * The desktop user's system SocksPort: the first loopback SocksPort the
 * policy lets the desktop user use (a namespace port is reachable only from
 * inside its namespace).
 */
export function systemSocksPort(policy: Policy): TorListener | undefined {
  return policy.socksPorts.find((s) => s.netns === undefined && s.clients.some((c) => c.uid === policy.desktopUser.uid));
}

export function aptUser(policy: Policy): User | undefined {
  return policy.users.find((u) => u.name === APT_USER);
}

/** The SocksPort APT uses: the first loopback one _apt is a client of. */
export function aptSocksPort(policy: Policy): TorListener | undefined {
  const u = aptUser(policy);
  return u && policy.socksPorts.find((s) => s.netns === undefined && s.clients.some((c) => c.uid === u.uid));
}

export interface AptSource {
  readonly host: string;
  readonly path: string;
  readonly suite: string;
  readonly components: string;
}

export function aptSources(policy: Policy): AptSource[] {
  const suite = policy.document.image.suite;
  const m = DEBIAN_MIRROR;
  return [
    { host: m.host, path: m.archive, suite, components: 'main' },
    { host: m.host, path: m.archive, suite: `${suite}-updates`, components: 'main' },
    { host: m.host, path: m.security, suite: `${suite}-security`, components: 'main' },
  ];
}
