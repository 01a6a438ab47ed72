// Ingram email channel: the Email Worker Cloudflare Email Routing runs for each inbound mail.
// It posts the raw message, unchanged, to our webhook, signed as channels/email_signature.py verifies:
//   HMAC-SHA256(IC_SECRET, "v1\n{timestamp}\n{envelope from}\n{envelope to}\n" + raw bytes)
// Bindings (set by the server at upload): IC_WEBHOOK_URL, IC_SECRET (secret), IC_MAX_BYTES.
//
// Failures: setReject() is a *permanent* SMTP error (the sender gets a bounce with our reason), so it is
// kept for answers that a retry would not change (4xx). For a network error, a timeout, 429 or 5xx we
// THROW instead: a Cloudflare Email Routing engineer states that "worker exceptions will result in a
// temporary smtp error back to the client" (cloudflare/cloudflare-docs PR #12591, review, 2024-01-18),
// so the sender's server keeps the message and retries. The published runtime API page only documents
// setReject as permanent; should a throw ever bounce, the sender learns no less than from a reject.

const encoder = new TextEncoder();
const TIMEOUT_MS = 20_000; // under the Email Worker's ~30 s wall-clock limit, so a hung server is a throw

export default {
  async email(message, env, ctx) {
    const maxBytes = Number(env.IC_MAX_BYTES);
    if (message.rawSize > maxBytes) {
      const limit = maxBytes >= 104_858 ? `${+(maxBytes / 1_048_576).toFixed(1)} MB` : `${maxBytes} bytes`;
      message.setReject(`Message too large: this inbox accepts messages up to ${limit}`);
      return;
    }
    // HTTP headers carry Latin-1 at most; ASCII keeps the signed text and the received header identical.
    if (/[^\x20-\x7e]/.test(message.from + message.to)) {
      message.setReject("Non-ASCII envelope addresses are not supported by this inbox");
      return;
    }
    const raw = new Uint8Array(await new Response(message.raw).arrayBuffer()); // the stream is read once
    const timestamp = String(Math.floor(Date.now() / 1000));
    const prefix = encoder.encode(`v1\n${timestamp}\n${message.from}\n${message.to}\n`);
    const signed = new Uint8Array(prefix.length + raw.length);
    signed.set(prefix);
    signed.set(raw, prefix.length);
    const key = await crypto.subtle.importKey(
      "raw", encoder.encode(env.IC_SECRET), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    const digest = new Uint8Array(await crypto.subtle.sign("HMAC", key, signed));
    const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");

    let response;
    try {
      response = await fetch(env.IC_WEBHOOK_URL, {
        method: "POST",
        body: raw,
        signal: AbortSignal.timeout(TIMEOUT_MS),
        headers: {
          "Content-Type": "message/rfc822",
          "X-IC-Timestamp": timestamp,
          "X-IC-Envelope-From": message.from,
          "X-IC-Envelope-To": message.to,
          "X-IC-Signature": `v1=${hex}`,
        },
      });
    } catch (error) {
      throw new Error("Temporarily unable to deliver; try again later", { cause: error }); // temp-fail
    }
    if (response.ok) return;
    if (response.status === 429 || response.status >= 500) {
      throw new Error(`Temporarily unable to deliver (HTTP ${response.status}); try again later`);
    }
    message.setReject(await reasonOf(response));
  },
};

// The server's {"error": {"code", "message"}} message, on one short line, else the HTTP status.
async function reasonOf(response) {
  try {
    const text = (await response.json())?.error?.message;
    if (typeof text === "string" && text.trim()) return text.replace(/\s+/g, " ").trim().slice(0, 200);
  } catch {
    // not JSON: fall through to the status
  }
  return `Not accepted (HTTP ${response.status})`;
}
