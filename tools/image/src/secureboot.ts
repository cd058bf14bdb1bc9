// What the UEFI Secure Boot path of a built ISO is made of, read from the
// image itself (its El Torito efi.img), not from the build host: the shim,
// the GRUB behind it and MokManager, each with its sha256, whether it carries
// an Authenticode signature, and its SBAT metadata. The shim's SBAT level is
// what a firmware that has applied a revocation compares against: a release
// engineer reads it to know which revocations the release survives.
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';

export interface EfiBinary {
  /** Path inside efi.img. */
  readonly path: string;
  readonly sha256: string;
  /** An Authenticode signature is attached (PE certificate table not empty). */
  readonly signed: boolean;
  /** The .sbat section (CSV: component, generation, vendor…), empty when there is none. */
  readonly sbat: string;
}

export interface SecureBootRecord {
  readonly shim: EfiBinary & {
    /** The shim's .sbatlevel: the revocations it applies itself (previous = default, latest = opt-in). */
    readonly sbatLevel: { readonly previous: string; readonly latest: string };
  };
  readonly grub: EfiBinary;
  readonly mokManager: EfiBinary;
}

export const EFI_BOOT_FILES = { shim: '::/EFI/BOOT/BOOTX64.EFI', grub: '::/EFI/BOOT/grubx64.efi', mokManager: '::/EFI/BOOT/mmx64.efi' } as const;

export class PeError extends Error {
  override readonly name = 'PeError';
}

interface Pe {
  readonly sections: ReadonlyMap<string, Buffer>;
  readonly signed: boolean;
}

/** The sections of a PE32+ image and whether it carries a certificate table. */
export function readPe(b: Buffer): Pe {
  if (b.length < 0x40 || b.toString('latin1', 0, 2) !== 'MZ') throw new PeError('not a PE image (no MZ header)');
  const pe = b.readUInt32LE(0x3c);
  if (pe + 24 > b.length || b.toString('latin1', pe, pe + 4) !== 'PE\0\0') throw new PeError('not a PE image (no PE signature)');
  const count = b.readUInt16LE(pe + 6);
  const optSize = b.readUInt16LE(pe + 20);
  const opt = pe + 24;
  if (b.readUInt16LE(opt) !== 0x20b) throw new PeError('not a PE32+ image');
  // data directory 4 is the certificate table (Authenticode); PE32+ directories start at +112
  const dirs = b.readUInt32LE(opt + 108);
  const certSize = dirs > 4 ? b.readUInt32LE(opt + 112 + 4 * 8 + 4) : 0;
  // names longer than 8 bytes (".sbatlevel") are "/N": offset N into the COFF string table after the symbols
  const strings = b.readUInt32LE(pe + 12) + b.readUInt32LE(pe + 16) * 18;
  const sections = new Map<string, Buffer>();
  for (let i = 0, at = opt + optSize; i < count; i++, at += 40) {
    if (at + 40 > b.length) throw new PeError('section table runs past the end of the image');
    const short = b.toString('latin1', at, at + 8).replace(/\0+$/, '');
    const long = /^\/(\d+)$/.exec(short);
    const name = long ? cString(b, strings + Number(long[1])) : short;
    const virtualSize = b.readUInt32LE(at + 8);
    const rawSize = b.readUInt32LE(at + 16);
    const raw = b.readUInt32LE(at + 20);
    sections.set(name, b.subarray(raw, raw + Math.min(virtualSize || rawSize, rawSize)));
  }
  return { sections, signed: certSize > 0 };
}

const cString = (b: Buffer, at = 0) => {
  const end = b.indexOf(0, at);
  return b.toString('utf8', at, end < 0 ? b.length : end);
};

/** shim's .sbatlevel: u32 format, then two u32 offsets (from byte 4) of NUL-terminated SBAT texts. */
export function parseSbatLevel(b: Buffer): { previous: string; latest: string } {
  if (b.length < 12) throw new PeError('.sbatlevel is too short');
  return { previous: cString(b, 4 + b.readUInt32LE(4)), latest: cString(b, 4 + b.readUInt32LE(8)) };
}

function describe(path: string, b: Buffer): EfiBinary & { pe: Pe } {
  const pe = readPe(b);
  const sbat = pe.sections.get('.sbat');
  return { path, sha256: createHash('sha256').update(b).digest('hex'), signed: pe.signed, sbat: sbat ? cString(sbat) : '', pe };
}

/** The Secure Boot record of the UEFI boot image of an ISO (needs mtools' mcopy). */
export async function secureBootRecord(efiImg: string): Promise<SecureBootRecord> {
  const dir = await mkdtemp(join(tmpdir(), 'leakless-efi-'));
  try {
    const read = async (key: keyof typeof EFI_BOOT_FILES) => {
      const out = join(dir, key);
      const r = await execa('mcopy', ['-n', '-i', efiImg, EFI_BOOT_FILES[key], out], { reject: false, all: true });
      if (r.exitCode !== 0) throw new PeError(`${EFI_BOOT_FILES[key]} is not in ${efiImg}: ${r.all}`);
      return describe(EFI_BOOT_FILES[key].slice(2), await readFile(out));
    };
    const { pe, ...shim } = await read('shim');
    const level = pe.sections.get('.sbatlevel');
    if (!level) throw new PeError(`${EFI_BOOT_FILES.shim} has no .sbatlevel section: not a shim`);
    const { pe: _g, ...grub } = await read('grub');
    const { pe: _m, ...mokManager } = await read('mokManager');
    return { shim: { ...shim, sbatLevel: parseSbatLevel(level) }, grub, mokManager };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The line shim prints when it refuses to start an image it cannot verify. */
export const SHIM_VERIFICATION_FAILED = /Verification failed: \(0x1A\) Security Violation/;
