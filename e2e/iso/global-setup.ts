// One id per `vitest run` of the ISO project. Suites share the cold build of
// the default ISO (e2e/iso/shared.ts) only within the run that made it: a
// build left by an earlier run is never reused, so every run proves a cold
// build, and the suites that only need an image (boots, the networked lab,
// packages, release artifacts) never pay for one of their own.
import { randomBytes } from 'node:crypto';
import type { TestProject } from 'vitest/node';

export default function setup(project: TestProject): void {
  project.provide('isoRunId', `${Date.now()}-${randomBytes(4).toString('hex')}`);
}

declare module 'vitest' {
  export interface ProvidedContext {
    isoRunId: string;
  }
}
