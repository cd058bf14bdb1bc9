// Typed builders for the debos 1.1.1 actions (actions/*.go at tag v1.1.1).
// debos parses recipes with yaml.v2 and silently ignores unknown keys, so a
// typo in a hand-written recipe is a no-op; here every property is typed and
// the combinations debos rejects at run time are rejected when the recipe is
// built. Property names below are the YAML keys debos reads.

export type Compression = 'gz' | 'bzip2' | 'xz';

interface Described {
  /** Shown by debos as "==== description ====" and used as the stage name. */
  readonly description?: string;
}

export interface RunAction extends Described {
  readonly action: 'run';
  readonly chroot?: boolean;
  readonly postprocess?: boolean;
  readonly command?: string;
  readonly script?: string;
  readonly label?: string;
}

export interface AptAction extends Described {
  readonly action: 'apt';
  readonly recommends: boolean;
  readonly unauthenticated?: boolean;
  readonly update?: boolean;
  readonly packages: readonly string[];
}

export interface UnpackAction extends Described {
  readonly action: 'unpack';
  readonly origin?: string;
  readonly file?: string;
  readonly compression?: Compression;
}

export interface OverlayAction extends Described {
  readonly action: 'overlay';
  readonly origin?: string;
  readonly source?: string;
  readonly destination?: string;
}

export interface PackAction extends Described {
  readonly action: 'pack';
  readonly file: string;
  readonly compression?: Compression | 'none';
}

export interface DebootstrapAction extends Described {
  readonly action: 'debootstrap';
  readonly suite: string;
  readonly mirror?: string;
  readonly variant?: string;
  readonly components?: readonly string[];
  readonly 'keyring-package'?: string;
  readonly 'keyring-file'?: string;
  readonly 'check-gpg'?: boolean;
  readonly 'merged-usr'?: boolean;
}

export interface DownloadAction extends Described {
  readonly action: 'download';
  readonly url: string;
  readonly name: string;
  readonly filename?: string;
  readonly unpack?: boolean;
  readonly compression?: Compression;
}

export interface RecipeIncludeAction extends Described {
  readonly action: 'recipe';
  readonly recipe: string;
  readonly variables?: Readonly<Record<string, string>>;
}

export type Action = RunAction | AptAction | UnpackAction | OverlayAction | PackAction | DebootstrapAction | DownloadAction | RecipeIncludeAction;

/** A recipe property that debos 1.1.1 would reject (or silently misread). */
export class RecipeError extends Error {
  override readonly name = 'RecipeError';
}

const DEBIAN_PACKAGE = /^[a-z0-9][a-z0-9+.-]+$/;
const ORIGINS_BUILTIN = new Set(['recipe', 'artifacts', 'filesystem']);

function described(d: string | undefined): { description?: string } {
  if (d === undefined) return {};
  if (d.trim() === '' || /[\n\r]/.test(d)) throw new RecipeError(`description must be one non-empty line (got ${JSON.stringify(d)})`);
  return { description: d };
}

/** A path relative to an origin: no absolute paths, no "..", no empty segments. */
function relativePath(what: string, p: string): string {
  if (p === '' || p.startsWith('/') || p.split('/').some((s) => s === '..' || s === '')) {
    throw new RecipeError(`${what} must be a relative path inside its origin without "..": ${JSON.stringify(p)}`);
  }
  return p;
}

function origin(o: string | undefined): { origin?: string } {
  if (o === undefined) return {};
  if (!/^[A-Za-z0-9_.-]+$/.test(o)) throw new RecipeError(`origin must be a name: ${JSON.stringify(o)}`);
  return { origin: o };
}

/** Origins every recipe has; download actions add their `name`. */
export const BUILTIN_ORIGINS: ReadonlySet<string> = ORIGINS_BUILTIN;

export type RunProps = Omit<RunAction, 'action'>;

/** run: a command (sh -c) or a script from the recipe directory, on the host, in the chroot or as post-processing. */
export function run(p: RunProps): RunAction {
  if ((p.command === undefined) === (p.script === undefined)) throw new RecipeError('run: exactly one of command or script is required');
  if (p.command !== undefined && p.command.trim() === '') throw new RecipeError('run: command must not be empty');
  if (p.chroot && p.postprocess) throw new RecipeError('run: chroot and postprocess are mutually exclusive');
  if (p.script !== undefined) {
    // debos splits the script property on the first space: path, then arguments
    const [path] = p.script.split(' ');
    relativePath('run: script', path!);
  }
  if (p.label !== undefined && (p.label === '' || /\n/.test(p.label))) throw new RecipeError('run: label must be one non-empty line');
  return {
    action: 'run',
    ...described(p.description),
    ...(p.chroot !== undefined ? { chroot: p.chroot } : {}),
    ...(p.postprocess !== undefined ? { postprocess: p.postprocess } : {}),
    ...(p.command !== undefined ? { command: p.command } : {}),
    ...(p.script !== undefined ? { script: p.script } : {}),
    ...(p.label !== undefined ? { label: p.label } : {}),
  };
}

export type AptProps = Omit<AptAction, 'action' | 'recommends'> & { readonly recommends?: boolean };

/** apt: apt-get update, install, clean in the chroot. Recommends are off unless asked for. */
export function apt(p: AptProps): AptAction {
  if (p.packages.length === 0) throw new RecipeError('apt: packages must not be empty');
  const seen = new Set<string>();
  for (const pkg of p.packages) {
    if (!DEBIAN_PACKAGE.test(pkg)) throw new RecipeError(`apt: not a Debian package name: ${JSON.stringify(pkg)}`);
    if (seen.has(pkg)) throw new RecipeError(`apt: package listed twice: ${pkg}`);
    seen.add(pkg);
  }
  return {
    action: 'apt',
    ...described(p.description),
    // written explicitly: a reader should not have to know debos' default
    recommends: p.recommends ?? false,
    ...(p.unauthenticated !== undefined ? { unauthenticated: p.unauthenticated } : {}),
    ...(p.update !== undefined ? { update: p.update } : {}),
    packages: [...p.packages],
  };
}

export type UnpackProps = Omit<UnpackAction, 'action'>;

/** unpack: extract a tarball onto the rootfs with tar as root (owners, modes and mtimes kept). */
export function unpack(p: UnpackProps): UnpackAction {
  if (p.file === undefined && p.origin === undefined) throw new RecipeError('unpack: file and/or origin is required');
  if (p.file !== undefined && !/\.(tar|tar\.gz|tgz|tar\.xz|tar\.bz2)$/.test(p.file))
    throw new RecipeError(`unpack: only tar archives are supported: ${p.file}`);
  return {
    action: 'unpack',
    ...described(p.description),
    ...origin(p.origin),
    ...(p.file !== undefined ? { file: relativePath('unpack: file', p.file) } : {}),
    ...(p.compression !== undefined ? { compression: p.compression } : {}),
  };
}

export type OverlayProps = Omit<OverlayAction, 'action'>;

/**
 * overlay: recursive copy onto the rootfs. It keeps mode bits but makes every
 * file root-owned and sets mtimes to now, so reproducible builds use unpack.
 */
export function overlay(p: OverlayProps): OverlayAction {
  if (p.destination !== undefined && (!p.destination.startsWith('/') || p.destination.split('/').includes('..'))) {
    throw new RecipeError(`overlay: destination must be an absolute path without "..": ${p.destination}`);
  }
  return {
    action: 'overlay',
    ...described(p.description),
    ...origin(p.origin),
    ...(p.source !== undefined ? { source: relativePath('overlay: source', p.source) } : {}),
    ...(p.destination !== undefined ? { destination: p.destination } : {}),
  };
}

export type PackProps = Omit<PackAction, 'action'>;

/** pack: tar the rootfs into the artifact dir (not reproducible: no --sort/--mtime in debos 1.1.1). */
export function pack(p: PackProps): PackAction {
  return {
    action: 'pack',
    ...described(p.description),
    file: relativePath('pack: file', p.file),
    ...(p.compression !== undefined ? { compression: p.compression } : {}),
  };
}

export type DebootstrapProps = Omit<DebootstrapAction, 'action' | 'keyring-package' | 'keyring-file' | 'check-gpg' | 'merged-usr'> & {
  readonly keyringPackage?: string;
  readonly keyringFile?: string;
  readonly checkGpg?: boolean;
  readonly mergedUsr?: boolean;
};

export function debootstrap(p: DebootstrapProps): DebootstrapAction {
  if (!/^[a-z][a-z0-9-]*$/.test(p.suite)) throw new RecipeError(`debootstrap: not a suite name: ${p.suite}`);
  return {
    action: 'debootstrap',
    ...described(p.description),
    suite: p.suite,
    ...(p.mirror !== undefined ? { mirror: p.mirror } : {}),
    ...(p.variant !== undefined ? { variant: p.variant } : {}),
    ...(p.components !== undefined ? { components: [...p.components] } : {}),
    ...(p.keyringPackage !== undefined ? { 'keyring-package': p.keyringPackage } : {}),
    ...(p.keyringFile !== undefined ? { 'keyring-file': p.keyringFile } : {}),
    ...(p.checkGpg !== undefined ? { 'check-gpg': p.checkGpg } : {}),
    ...(p.mergedUsr !== undefined ? { 'merged-usr': p.mergedUsr } : {}),
  };
}

export type DownloadProps = Omit<DownloadAction, 'action'>;

export function download(p: DownloadProps): DownloadAction {
  if (!/^(https?|ftp):\/\/\S+$/.test(p.url)) throw new RecipeError(`download: url must be http(s) or ftp: ${p.url}`);
  if (!/^[A-Za-z0-9_.-]+$/.test(p.name) || ORIGINS_BUILTIN.has(p.name)) throw new RecipeError(`download: bad origin name ${JSON.stringify(p.name)}`);
  return {
    action: 'download',
    ...described(p.description),
    url: p.url,
    name: p.name,
    ...(p.filename !== undefined ? { filename: relativePath('download: filename', p.filename) } : {}),
    ...(p.unpack !== undefined ? { unpack: p.unpack } : {}),
    ...(p.compression !== undefined ? { compression: p.compression } : {}),
  };
}

export type RecipeIncludeProps = Omit<RecipeIncludeAction, 'action'>;

/** recipe: include another recipe (same architecture) with template variables. */
export function include(p: RecipeIncludeProps): RecipeIncludeAction {
  relativePath('recipe: recipe', p.recipe);
  const variables = p.variables
    ? Object.fromEntries(
        Object.keys(p.variables)
          .sort()
          .map((k) => [k, p.variables![k]!]),
      )
    : undefined;
  return { action: 'recipe', ...described(p.description), recipe: p.recipe, ...(variables ? { variables } : {}) };
}

/** The stage name debos logs for an action: its description, else the action kind. */
export function stageName(a: Action): string {
  return a.description ?? a.action;
}
