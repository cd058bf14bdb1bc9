// The image's software bill of materials, CycloneDX 1.6 JSON: every Debian
// binary package the root filesystem's dpkg database says is installed (name,
// version, architecture, its source package and version, the licences its
// machine-readable copyright file declares), the source packages they come
// from, and leakless' own content (every file the modules and the image
// add, with its sha256). Read from the built root filesystem, not from the
// plan: an SBOM of what was meant would hide what a package pulled in.
// Deterministic (the timestamp is SOURCE_DATE_EPOCH, the serial number is
// derived from the ISO's sha256), so it is a release artifact like the ISO.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Enums, Models, Serialize, Spec, Validation } from '@cyclonedx/cyclonedx-library';
import { parseParagraphs } from '@leakless/apt-repo';

export interface DebianPackage {
  readonly name: string;
  readonly version: string;
  readonly arch: string;
  readonly source: string;
  readonly sourceVersion: string;
  /** Licence short names from a machine-readable (DEP-5) copyright file; empty when Debian declares none that way. */
  readonly licenses: readonly string[];
}

export interface LeaklessFile {
  readonly path: string;
  readonly content: string | Buffer;
  readonly clause: string;
}

export interface SbomInputs {
  readonly packages: readonly DebianPackage[];
  readonly files: readonly LeaklessFile[];
  readonly policy: string;
  readonly release: string;
  readonly suite: string;
  readonly sourceDateEpoch: number;
  readonly iso: { readonly sha256: string; readonly name: string };
}

export const SBOM_NAME = 'leakless-amd64.cdx.json';
const SPEC = Spec.Spec1dot6;

/** dpkg's status file: the installed packages with their source package (Source: "src (version)" when it differs). */
export function parseDpkgStatus(text: string): Omit<DebianPackage, 'licenses'>[] {
  const out: Omit<DebianPackage, 'licenses'>[] = [];
  for (const f of parseParagraphs(text)) {
    const name = f.Package;
    const version = f.Version;
    if (!f.Status?.endsWith(' installed') || !name || !version) continue;
    const src = /^(\S+)(?:\s+\((\S+)\))?$/.exec(f.Source ?? name);
    out.push({ name, version, arch: f.Architecture ?? 'all', source: src?.[1] ?? name, sourceVersion: src?.[2] ?? version });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The licence short names of a DEP-5 copyright file (License: lines, first word group only); [] for free-form files. */
export function dep5Licenses(text: string): string[] {
  if (!/^Format:\s*\S*copyright-format/m.test(text)) return [];
  const names = new Set<string>();
  for (const m of text.matchAll(/^License:[ \t]*(\S[^\n]*)$/gm)) {
    const v = m[1]!.trim();
    if (v) names.add(v);
  }
  return [...names].sort();
}

/** The installed packages of a root filesystem, with the licences their copyright files declare. */
export async function rootfsPackages(root: string): Promise<DebianPackage[]> {
  const status = parseDpkgStatus(await readFile(join(root, 'var/lib/dpkg/status'), 'utf8'));
  const out: DebianPackage[] = [];
  for (const p of status) {
    const copyright = await readFile(join(root, 'usr/share/doc', p.name, 'copyright'), 'utf8').catch(() => '');
    out.push({ ...p, licenses: dep5Licenses(copyright) });
  }
  return out;
}

const sha256 = (b: string | Buffer) => createHash('sha256').update(b).digest('hex');

/** A Debian package URL (purl spec: type deb, namespace debian, qualifiers sorted, every part percent-encoded). */
export function debPurl(name: string, version: string, qualifiers: Readonly<Record<string, string>>): string {
  const q = Object.keys(qualifiers)
    .sort()
    .map((k) => `${k}=${encodeURIComponent(qualifiers[k]!)}`)
    .join('&');
  return `pkg:deb/debian/${encodeURIComponent(name)}@${encodeURIComponent(version)}${q ? `?${q}` : ''}`;
}

/** A deterministic urn:uuid (RFC 4122 layout, version 5 bits) from the ISO's sha256. */
export function serialNumber(isoSha256: string): string {
  const h = createHash('sha1').update(`leakless-sbom:${isoSha256}`).digest('hex');
  const variant = ((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16);
  return `urn:uuid:${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function licenses(names: readonly string[]): Models.LicenseRepository {
  return new Models.LicenseRepository(names.map((n) => new Models.NamedLicense(n)));
}

/** The CycloneDX document (pure). */
export function makeSbom(inp: SbomInputs): string {
  const distro = inp.suite === 'bookworm' ? 'debian-12' : inp.suite;
  const bom = new Models.Bom({ serialNumber: serialNumber(inp.iso.sha256) });
  bom.metadata.timestamp = new Date(inp.sourceDateEpoch * 1000);
  const image = new Models.Component(Enums.ComponentType.OperatingSystem, 'leakless', {
    version: inp.release,
    bomRef: 'leakless-image',
    description: `leakless live image, policy ${inp.policy}, Debian ${inp.suite}`,
  });
  image.hashes.set(Enums.HashAlgorithm['SHA-256'], inp.iso.sha256);
  image.properties.add(new Models.Property('leakless:iso', inp.iso.name));
  bom.metadata.component = image;

  const sources = new Map<string, Models.Component>();
  for (const p of inp.packages) {
    const key = `${p.source}@${p.sourceVersion}`;
    if (sources.has(key)) continue;
    const c = new Models.Component(Enums.ComponentType.Library, p.source, {
      version: p.sourceVersion,
      bomRef: `deb-src:${key}`,
      purl: debPurl(p.source, p.sourceVersion, { arch: 'source', distro }),
      description: 'Debian source package',
    });
    sources.set(key, c);
    bom.components.add(c);
  }
  for (const p of inp.packages) {
    const c = new Models.Component(Enums.ComponentType.Library, p.name, {
      version: p.version,
      bomRef: `deb:${p.name}@${p.version}:${p.arch}`,
      purl: debPurl(p.name, p.version, { arch: p.arch, distro, upstream: `${p.source}@${p.sourceVersion}` }),
      licenses: licenses(p.licenses),
    });
    c.properties.add(new Models.Property('debian:source', `${p.source} ${p.sourceVersion}`));
    c.dependencies.add(sources.get(`${p.source}@${p.sourceVersion}`)!.bomRef);
    bom.components.add(c);
  }
  const leakless = new Models.Component(Enums.ComponentType.Application, 'leakless-content', {
    version: inp.release,
    bomRef: 'leakless-content',
    description: `files leakless adds to the image (policy ${inp.policy}): module output and the image's own files`,
    licenses: licenses(['GPL-3.0-or-later']),
  });
  for (const f of inp.files) {
    const c = new Models.Component(Enums.ComponentType.File, f.path, { bomRef: `file:${f.path}` });
    c.hashes.set(Enums.HashAlgorithm['SHA-256'], sha256(f.content));
    c.properties.add(new Models.Property('leakless:clause', f.clause));
    leakless.components.add(c);
  }
  bom.components.add(leakless);
  for (const c of bom.components) if (c !== leakless && !c.purl?.includes('arch=source')) image.dependencies.add(c.bomRef);
  image.dependencies.add(leakless.bomRef);

  const serializer = new Serialize.JsonSerializer(new Serialize.JSON.Normalize.Factory(SPEC));
  return `${serializer.serialize(bom, { sortLists: true, space: 2 })}\n`;
}

/** Validate against the CycloneDX 1.6 JSON schema the library ships; the first errors, or undefined when valid. */
export async function validateSbom(json: string): Promise<string | undefined> {
  const errors = await new Validation.JsonStrictValidator(SPEC.version).validate(json);
  return errors === null ? undefined : JSON.stringify(errors).slice(0, 2000);
}

/** How many Debian binary packages an SBOM lists. */
export function sbomPackageCount(json: string): number {
  const doc = JSON.parse(json) as { components?: { purl?: string }[] };
  return (doc.components ?? []).filter((c) => c.purl?.startsWith('pkg:deb/') && !c.purl.includes('arch=source')).length;
}
