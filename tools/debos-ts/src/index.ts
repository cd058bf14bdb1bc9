// @leakless/debos-ts: typed debos 1.1.1 recipes rendered deterministically,
// and a runner that shows progress and explains failures.
export { apt, debootstrap, download, include, overlay, pack, run, unpack, stageName, RecipeError, BUILTIN_ORIGINS } from './actions.js';
export type {
  Action,
  AptAction,
  AptProps,
  Compression,
  DebootstrapAction,
  DownloadAction,
  OverlayAction,
  PackAction,
  RecipeIncludeAction,
  RunAction,
  RunProps,
  UnpackAction,
} from './actions.js';
export { recipe, renderRecipe, stagesOf } from './recipe.js';
export type { Architecture, Recipe } from './recipe.js';
export { toYaml, escapeTemplate } from './yaml.js';
export { parseDebosLine } from './log.js';
export type { DebosEvent } from './log.js';
export { createProgress, silentProgress, formatDuration } from './progress.js';
export type { Progress, ProgressOptions, StageTiming } from './progress.js';
export { runDebos, debosArgs, DebosError } from './runner.js';
export type { DebosMode, DebosRun, DebosRunOptions, DebosFailure, FakemachineBackend } from './runner.js';
