// The public editq HTTP API, as the studio uses it. The key goes in the Authorization header only.

export class ApiError extends Error {
  constructor(status, code, message, param) {
    super(message);
    this.status = status;
    this.code = code;
    this.param = param;
  }
}

let apiKey = "";

export function setKey(key) {
  apiKey = key.trim();
}

export function hasKey() {
  return apiKey !== "";
}

function headers(extra = {}) {
  return apiKey ? { Authorization: `Bearer ${apiKey}`, ...extra } : { ...extra };
}

async function fail(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: the status says enough
  }
  const error = body && body.error ? body.error : {};
  throw new ApiError(
    response.status,
    error.code || `http_${response.status}`,
    error.message || response.statusText || "request failed",
    error.param || null,
  );
}

export async function call(method, path, { json, form, signal, extraHeaders } = {}) {
  const init = { method, headers: headers(extraHeaders), signal };
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (form !== undefined) {
    init.body = form;
  }
  const response = await fetch(path, init);
  if (!response.ok) await fail(response);
  return response.status === 204 ? null : response.json();
}

/** An output (or any API-served picture) as an object URL: <img> cannot send the key. */
export async function blobUrl(path, signal) {
  const response = await fetch(path, { headers: headers(), signal });
  if (!response.ok) await fail(response);
  return URL.createObjectURL(await response.blob());
}

/** The API path of a job's output, whatever host the job's URL names. */
export function outputPath(job, index) {
  return `/v1/edits/${encodeURIComponent(job.id)}/outputs/${index}`;
}

/**
 * Follows `GET /v1/edits/{id}/events`, calling onEvent(name, data) for each event, until `done`
 * or until signal aborts. EventSource cannot send headers, so the stream is read with fetch.
 * Returns true when the stream ended with `done`.
 */
export async function follow(jobId, onEvent, signal) {
  const response = await fetch(`/v1/edits/${encodeURIComponent(jobId)}/events`, {
    headers: headers({ Accept: "text/event-stream" }),
    signal,
  });
  if (!response.ok) await fail(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return false;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = parseEvent(block);
      if (event === null) continue;
      onEvent(event.name, event.data);
      if (event.name === "done") {
        reader.cancel().catch(() => {});
        return true;
      }
    }
  }
}

/** One SSE block: `event:` and `data:` lines; comments (`:`) and `retry:` are skipped. */
export function parseEvent(block) {
  let name = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line === "" || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") name = value;
    else if (field === "data") data.push(value);
  }
  if (data.length === 0) return null;
  try {
    return { name, data: JSON.parse(data.join("\n")) };
  } catch {
    return { name, data: data.join("\n") };
  }
}
