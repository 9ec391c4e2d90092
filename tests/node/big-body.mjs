// Sends one POST with a body far over any limit (BYTES, default 20 MB) to URL, with
// `Expect: 100-continue` when EXPECT=1, and prints what Node's own http client saw as JSON:
// { status, body, continued, error }. With Expect, the body is sent once the server says
// `100 Continue` (as Node's documentation shows), or after a second without an answer (as curl
// does). Without it, the whole body is written at once.
import http from "node:http";

const url = new URL(process.env.URL);
const bytes = Number(process.env.BYTES ?? 20 * 1024 * 1024);
const expect = process.env.EXPECT === "1";
const body = Buffer.alloc(bytes, "a");

const report = { status: null, body: null, continued: false, error: null };
const headers = {
  "content-type": process.env.CONTENT_TYPE ?? "application/json",
  "content-length": String(bytes),
  accept: "application/json, text/event-stream",
};
if (expect) headers.expect = "100-continue";

const req = http.request(url, { method: "POST", headers });
let sent = false;
const send = () => {
  if (sent) return;
  sent = true;
  req.end(body);
};
req.on("continue", () => {
  report.continued = true;
  send();
});
req.on("response", (res) => {
  report.status = res.statusCode;
  const chunks = [];
  res.on("data", (c) => chunks.push(c));
  res.on("end", () => {
    report.body = Buffer.concat(chunks).toString("utf8");
    finish();
  });
});
req.on("error", (e) => {
  report.error = e.code ?? String(e);
  finish();
});
if (expect) {
  setTimeout(send, 1000);
} else {
  send();
}

let done = false;
function finish() {
  if (done) return;
  done = true;
  // The response may come before the body is sent (with Expect); never send it then.
  sent = true;
  process.stdout.write(JSON.stringify(report) + "\n");
  process.exit(0);
}
setTimeout(() => {
  report.error = report.error ?? "no answer within 20 s";
  finish();
}, 20000);
