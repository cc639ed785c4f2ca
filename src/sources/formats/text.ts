// A text file's bytes as JavaScript text, in the source's declared encoding. UTF-8 is checked
// rather than repaired: each invalid byte becomes a lone surrogate (U+DFFF), which no valid UTF-8
// decodes to and which the STRING check refuses (records/values.ts), so the row holding it is
// quarantined instead of loading with U+FFFD in place of what the file meant.
import { isUtf8 } from "node:buffer";
import { TextDecoder } from "node:util";
import { toBuffer, type ByteSource } from "./types.js";

export const TEXT_ENCODINGS = ["UTF_8", "LATIN_1", "WINDOWS_1252", "UTF_16"] as const;
export type TextEncoding = (typeof TEXT_ENCODINGS)[number];

/** What an invalid UTF-8 byte becomes: a code unit valid UTF-8 never produces. */
export const INVALID_BYTE = "\uDFFF";

/**
 * Why a record read with the source's encoding looks wrong, or null: a text value holds bytes that
 * were not valid UTF-8. The connection test reports it, naming the setting that fixes it.
 */
export function encodingProblem(record: Record<string, unknown>): string | null {
  for (const [field, value] of Object.entries(record)) {
    if (typeof value === "string" && value.includes(INVALID_BYTE)) {
      return `field "${field}" has bytes that are not valid UTF-8: set the source's encoding (${TEXT_ENCODINGS.join(", ")})`;
    }
  }
  return null;
}

/** The text of `input`, chunk by chunk; a byte order mark at the start is dropped. */
export async function* decodeText(
  input: ByteSource,
  encoding: TextEncoding = "UTF_8",
): AsyncGenerator<string> {
  const decoder = decoderFor(encoding);
  let first = true;
  for await (const chunk of input) {
    let text = decoder.write(toBuffer(chunk));
    if (first && text.length > 0) {
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      first = false;
    }
    if (text) yield text;
  }
  const rest = decoder.end();
  if (rest && !(first && rest === "\uFEFF"))
    yield first && rest.charCodeAt(0) === 0xfeff ? rest.slice(1) : rest;
}

interface Decoder {
  write(bytes: Buffer): string;
  end(): string;
}

function decoderFor(encoding: TextEncoding): Decoder {
  switch (encoding) {
    case "UTF_8":
      return new Utf8Checker();
    case "LATIN_1":
      // ISO-8859-1 proper: every byte is the code point of the same number. (The WHATWG
      // TextDecoder's "latin1" label means windows-1252.)
      return { write: (bytes) => bytes.toString("latin1"), end: () => "" };
    case "WINDOWS_1252":
      return streaming(new TextDecoder("windows-1252"));
    case "UTF_16":
      return new Utf16Decoder();
  }
}

function streaming(decoder: TextDecoder): Decoder {
  return {
    write: (bytes) => decoder.decode(bytes, { stream: true }),
    end: () => decoder.decode(),
  };
}

/** UTF-16 in the byte order its BOM names (little-endian without one, as Windows writes it). */
class Utf16Decoder implements Decoder {
  private decoder: TextDecoder | null = null;
  private head = Buffer.alloc(0);

  write(bytes: Buffer): string {
    if (!this.decoder) {
      this.head = Buffer.concat([this.head, bytes]);
      if (this.head.length < 2) return "";
      const bigEndian = this.head[0] === 0xfe && this.head[1] === 0xff;
      this.decoder = new TextDecoder(bigEndian ? "utf-16be" : "utf-16le");
      bytes = this.head;
    }
    return this.decoder.decode(bytes, { stream: true });
  }

  end(): string {
    return this.decoder ? this.decoder.decode() : this.head.length ? INVALID_BYTE : "";
  }
}

/** UTF-8, streamed, with each invalid byte as {@link INVALID_BYTE}. */
class Utf8Checker implements Decoder {
  private carry: Buffer | null = null;
  private readonly decoder = new TextDecoder("utf-8", { ignoreBOM: true });

  write(chunk: Buffer): string {
    const bytes = this.carry ? Buffer.concat([this.carry, chunk]) : chunk;
    const end = completeLength(bytes);
    this.carry = end < bytes.length ? Buffer.from(bytes.subarray(end)) : null;
    return this.decode(bytes.subarray(0, end));
  }

  end(): string {
    const rest = this.carry;
    this.carry = null;
    // A sequence cut off by the end of the file.
    return rest ? INVALID_BYTE.repeat(rest.length) : "";
  }

  private decode(bytes: Buffer): string {
    if (isUtf8(bytes)) return this.decoder.decode(bytes);
    let text = "";
    let start = 0;
    let i = 0;
    while (i < bytes.length) {
      const length = validSequenceAt(bytes, i);
      if (length > 0) {
        i += length;
        continue;
      }
      text += this.decoder.decode(bytes.subarray(start, i)) + INVALID_BYTE;
      i++;
      start = i;
    }
    return text + this.decoder.decode(bytes.subarray(start));
  }
}

/** How many leading bytes end on a sequence boundary: a lead byte whose sequence is cut stays out. */
function completeLength(bytes: Buffer): number {
  const n = bytes.length;
  for (let back = 1; back <= 3 && back <= n; back++) {
    const b = bytes[n - back]!;
    if (b < 0x80) return n;
    if (b >= 0xc0) {
      const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
      return need > back ? n - back : n;
    }
  }
  return n;
}

/** The length of the valid UTF-8 sequence at `i` (RFC 3629: no overlongs, no surrogates), or 0. */
function validSequenceAt(bytes: Buffer, i: number): number {
  const b = bytes[i]!;
  if (b < 0x80) return 1;
  const cont = (k: number, lo = 0x80, hi = 0xbf) => {
    const c = bytes[i + k];
    return c !== undefined && c >= lo && c <= hi;
  };
  if (b >= 0xc2 && b <= 0xdf) return cont(1) ? 2 : 0;
  if (b === 0xe0) return cont(1, 0xa0) && cont(2) ? 3 : 0;
  if (b === 0xed) return cont(1, 0x80, 0x9f) && cont(2) ? 3 : 0;
  if (b >= 0xe1 && b <= 0xef) return cont(1) && cont(2) ? 3 : 0;
  if (b === 0xf0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (b >= 0xf1 && b <= 0xf3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (b === 0xf4) return cont(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}
