// The apt sources an image is built from. Builds use the host's configured
// mirrors and nothing else: on a build machine whose only route to Debian is
// its own mirror (or proxy), any built-in default such as security.debian.org
// fails, and a default that happens to work elsewhere is a second, unaudited
// source of packages.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { parseAptSources } from '@leakless/policy';

export class SourcesError extends Error {
  override readonly name = 'SourcesError';
}

export interface AptSources {
  /** File name inside the recipe (deb822 `.sources` or one-line `.list`). */
  readonly name: string;
  readonly content: string;
}

export const HOST_DEBIAN_SOURCES = ['/etc/apt/sources.list.d/debian.sources', '/etc/apt/sources.list'];

/** The apt sources the base bootstraps from (mmdebstrap pastes a MIRROR file into the chroot as it is). */
export async function resolveSources(mirror: string | undefined, suite: string, hostFiles: readonly string[] = HOST_DEBIAN_SOURCES): Promise<AptSources> {
  if (mirror !== undefined && /^https?:\/\//.test(mirror)) {
    if (/\s/.test(mirror)) throw new SourcesError(`--mirror: not a URL: ${mirror}`);
    return { name: 'mirror.list', content: `deb ${mirror} ${suite} main\n` };
  }
  const candidates = mirror !== undefined ? [mirror] : hostFiles;
  for (const c of candidates) {
    if (!existsSync(c)) continue;
    const name = c.endsWith('.sources') ? 'debian.sources' : 'debian.list';
    return { name, content: await readFile(c, 'utf8') };
  }
  if (mirror !== undefined) throw new SourcesError(`--mirror: ${mirror} is neither an http(s) URL nor a file`);
  // mmdebstrap's own default, with the updates and security suites of a stable release
  return {
    name: 'debian.list',
    content: `deb http://deb.debian.org/debian ${suite} main\ndeb http://deb.debian.org/debian ${suite}-updates main\ndeb http://deb.debian.org/debian-security ${suite}-security main\n`,
  };
}

export interface SourceEntry {
  readonly uris: readonly string[];
  readonly suites: readonly string[];
  readonly components: readonly string[];
}

/** The `deb` entries of a sources file (deb822 or one-line). */
export function parseSources(s: AptSources): SourceEntry[] {
  return parseAptSources(s.name, s.content)
    .filter((e) => e.types.includes('deb'))
    .map(({ uris, suites, components }) => ({ uris, suites, components }));
}

/** The first mirror that serves `suite`, with the trailing slash live-build writes. */
export function mirrorFor(entries: readonly SourceEntry[], suite: string): string | undefined {
  const e = entries.find((x) => x.suites.includes(suite) && x.uris.length > 0);
  const uri = e?.uris[0];
  return uri === undefined ? undefined : uri.endsWith('/') ? uri : `${uri}/`;
}
