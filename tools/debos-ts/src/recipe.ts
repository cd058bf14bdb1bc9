// A whole recipe: architecture + actions, checked as a sequence (origins
// must exist before use, postprocess steps run last) and rendered to YAML.
import { BUILTIN_ORIGINS, RecipeError, stageName, type Action } from './actions.js';
import { escapeTemplate, toYaml, type YamlMap } from './yaml.js';

export type Architecture = 'amd64' | 'arm64' | 'armhf' | 'armel' | 'i386' | 'mips' | 'mipsel' | 'mips64el' | 'riscv64';

export interface Recipe {
  readonly architecture: Architecture;
  readonly actions: readonly Action[];
  /** Comment lines written at the top of the file (no timestamps: the file is deterministic). */
  readonly header?: readonly string[];
}

export function recipe(architecture: Architecture, actions: readonly Action[], header: readonly string[] = []): Recipe {
  if (actions.length === 0) throw new RecipeError('a recipe needs at least one action');
  const origins = new Set(BUILTIN_ORIGINS);
  for (const [i, a] of actions.entries()) {
    if ((a.action === 'unpack' || a.action === 'overlay') && a.origin !== undefined && !origins.has(a.origin)) {
      throw new RecipeError(`action ${i + 1} (${stageName(a)}): origin ${JSON.stringify(a.origin)} is not defined by an earlier download action`);
    }
    if (a.action === 'download') {
      if (origins.has(a.name)) throw new RecipeError(`action ${i + 1}: origin ${a.name} defined twice`);
      origins.add(a.name);
    }
  }
  for (const h of header) if (/[\n\r]/.test(h)) throw new RecipeError('header lines must not contain newlines');
  return { architecture, actions: [...actions], header: [...header] };
}

/**
 * The stages in the order debos logs them: postprocess runs come after every
 * other action (debos runs them in PostMachine), whatever their position.
 */
export function stagesOf(r: Recipe): string[] {
  const main = r.actions.filter((a) => !(a.action === 'run' && a.postprocess));
  const post = r.actions.filter((a) => a.action === 'run' && a.postprocess);
  return [...main, ...post].map(stageName);
}

/** The recipe as debos reads it. Same recipe, same bytes. */
export function renderRecipe(r: Recipe): string {
  const header = (r.header ?? []).map((h) => (h === '' ? '#' : `# ${escapeTemplate(h)}`)).join('\n');
  const body = toYaml({ architecture: r.architecture, actions: r.actions as unknown as YamlMap[] });
  return header ? `${header}\n${body}` : body;
}
