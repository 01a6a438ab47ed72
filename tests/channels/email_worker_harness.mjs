// Runs channels/email_worker.js once under Node, as Cloudflare Email Routing would, for the Python test.
// Usage: node email_worker_harness.mjs <worker.js>  with a JSON case on stdin:
//   {"from", "to", "raw_b64", "raw_size"?, "env": {...}}
// Prints one JSON line: {"rejected": reason|null, "threw": message|null, "raw_reads": n}.
import { readFileSync } from "node:fs";

const source = readFileSync(process.argv[2], "utf8");
// A data: URL is always an ES module and resolves no imports: the script must stand alone, as uploaded.
const worker = (await import(`data:text/javascript;base64,${Buffer.from(source).toString("base64")}`)).default;
const spec = JSON.parse(readFileSync(0, "utf8"));
const bytes = new Uint8Array(Buffer.from(spec.raw_b64, "base64"));

let rejected = null;
let rawReads = 0;
const message = {
  from: spec.from,
  to: spec.to,
  headers: new Headers(),
  rawSize: spec.raw_size ?? bytes.length,
  get raw() {
    rawReads += 1;
    let offset = 0;
    return new ReadableStream({ // in small chunks, as a network stream would arrive
      pull(controller) {
        if (offset >= bytes.length) return controller.close();
        controller.enqueue(bytes.slice(offset, offset + 97));
        offset += 97;
      },
    });
  },
  setReject(reason) {
    rejected = reason;
  },
};

let threw = null;
try {
  await worker.email(message, spec.env, { waitUntil() {} });
} catch (error) {
  threw = error.message;
}
console.log(JSON.stringify({ rejected, threw, raw_reads: rawReads }));
