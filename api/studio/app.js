// editq studio: pick images, paint a mask, see the cost, run an edit, follow it, compare, revisit.
import { ApiError, blobUrl, call, follow, hasKey, outputPath, setKey } from "./api.js";
import { MaskPainter } from "./mask.js";

const KEY_STORE = "editq.apiKey";
const MAX_IMAGES = 16;
const HISTORY_SIZE = 20;
const PERIODS = { day: "today", month: "this month", total: "in total" };
const $ = (id) => document.getElementById(id);

const state = {
  images: [], // {file, url, width, height, id}
  maskFile: null, // an uploaded mask file, when one was chosen instead of painting
  maskUpload: null, // {version, id}
  maskVersion: 0,
  models: [],
  job: null,
  following: null,
  outputUrls: [],
  sourceUrls: new Map(), // upload id -> object URL of the picture this page has
  thumbs: new Map(), // job id -> promise of the object URL of its first output
  estimateTimer: 0,
  estimateSeq: 0,
};

const painter = new MaskPainter($("mask-canvas"), $("brush"), () => {
  state.maskFile = null;
  $("mask-file").value = "";
  maskChanged();
});

// ---- small helpers

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (value !== undefined && value !== null) node[name] = value;
  }
  node.append(...children);
  return node;
}

function dollars(value) {
  if (value === null || value === undefined) return "unknown";
  const amount = Number(value);
  return amount < 0.01 && amount > 0 ? `$${amount.toFixed(4)}` : `$${amount.toFixed(2)}`;
}

function kb(bytes) {
  return bytes >= 1048576 ? `${(bytes / 1048576).toFixed(1)} MB` : `${Math.max(1, Math.round(bytes / 1024))} KB`;
}

function describeError(error) {
  if (error instanceof ApiError) return `${error.message} (${error.code})`;
  return String(error && error.message ? error.message : error);
}

function showError(error) {
  const box = $("error");
  if (!error) {
    box.hidden = true;
    box.textContent = "";
    return;
  }
  box.hidden = false;
  box.textContent = typeof error === "string" ? error : describeError(error);
}

function decode(file) {
  return new Promise((resolve, reject) => {
    const url = URL.createObjectURL(file);
    const img = new Image();
    img.onload = () => resolve({ url, width: img.naturalWidth, height: img.naturalHeight });
    img.onerror = () => {
      URL.revokeObjectURL(url);
      reject(new Error(`${file.name} is not a picture this browser can show`));
    };
    img.src = url;
  });
}

// ---- key

function keyChanged() {
  const key = $("key").value;
  setKey(key);
  if (key.trim()) localStorage.setItem(KEY_STORE, key.trim());
  else localStorage.removeItem(KEY_STORE);
  $("key-state").textContent = key.trim() ? "saved in this browser" : "";
  for (const image of state.images) image.id = null;
  state.maskUpload = null;
  loadHistory();
  scheduleEstimate();
}

// ---- sources

async function addFiles(files) {
  const pictures = [...files].filter((f) => f.type.startsWith("image/") || f.type === "");
  if (pictures.length === 0) return;
  if (pictures.length > MAX_IMAGES) {
    showError(`At most ${MAX_IMAGES} images per edit; the first ${MAX_IMAGES} are kept.`);
  } else {
    showError(null);
  }
  for (const image of state.images) if (!image.id) URL.revokeObjectURL(image.url);
  state.images = [];
  for (const file of pictures.slice(0, MAX_IMAGES)) {
    try {
      const { url, width, height } = await decode(file);
      state.images.push({ file, url, width, height, id: null });
    } catch (error) {
      showError(error);
    }
  }
  renderThumbs();
  resetMask();
  scheduleEstimate();
}

function renderThumbs() {
  const list = $("thumbs");
  list.replaceChildren(
    ...state.images.map((image, index) =>
      el(
        "li",
        {},
        el("img", { src: image.url, alt: `Image ${index + 1}: ${image.file.name}` }),
        el("span", { class: "size" }, `${image.width}×${image.height} · ${kb(image.file.size)}`),
      ),
    ),
  );
}

function resetMask() {
  state.maskFile = null;
  state.maskUpload = null;
  $("mask-file").value = "";
  const first = state.images[0];
  $("mask-area").hidden = !first;
  if (!first) return;
  $("mask-base").src = first.url;
  painter.reset(first.width, first.height);
  maskChanged(false);
}

function maskChanged(estimate = true) {
  state.maskVersion += 1;
  const note = state.maskFile
    ? `mask file ${state.maskFile.name}`
    : painter.painted
      ? "painted mask: the coloured area is edited"
      : "no mask: the whole picture may change";
  $("mask-state").textContent = note;
  if (estimate) scheduleEstimate();
}

async function uploadOne(blob, name) {
  const form = new FormData();
  form.append("file", blob, name);
  const answer = await call("POST", "/v1/uploads", { form });
  return answer.id;
}

async function sourceIds() {
  for (const image of state.images) {
    if (!image.id) {
      image.id = await uploadOne(image.file, image.file.name || "image");
      state.sourceUrls.set(image.id, image.url);
    }
  }
  return state.images.map((image) => image.id);
}

async function maskId() {
  if (!state.maskFile && !painter.painted) return null;
  const version = state.maskVersion;
  if (state.maskUpload && state.maskUpload.version === version) return state.maskUpload.id;
  const blob = state.maskFile || (await painter.toBlob());
  const id = await uploadOne(blob, "mask.png");
  state.maskUpload = { version, id };
  return id;
}

// ---- options

function aspectRatio() {
  const value = $("aspect").value;
  return value === "custom" ? $("custom-ratio").value.trim() : value;
}

function options() {
  const body = {
    prompt: $("prompt").value,
    strength: $("strength").value,
    quality: $("quality").value,
    n: Number($("n").value) || 1,
  };
  const ratio = aspectRatio();
  if (ratio) body.aspect_ratio = ratio;
  if ($("model").value) body.model = $("model").value;
  return body;
}

async function requestBody() {
  const body = { ...options(), image_ids: await sourceIds() };
  const mask = await maskId();
  if (mask) body.mask_id = mask;
  return body;
}

async function loadModels() {
  try {
    const answer = await call("GET", "/v1/models");
    state.models = answer.data;
    const select = $("model");
    const chosen = select.value;
    select.replaceChildren(el("option", { value: "" }, `default (${answer.default || "none available"})`));
    for (const model of answer.data) {
      const prices = model.prices_usd_per_1m_tokens || {};
      let label = model.id;
      if (prices.image_output) label += ` · $${prices.image_input}/$${prices.image_output} per 1M image tokens`;
      if (model.retired) label += ` · retired, use ${model.successor || "another model"}`;
      else if (model.retires_on) label += ` · retires ${model.retires_on}`;
      if (!model.served && !model.retired) label += " · not served";
      select.append(el("option", { value: model.id, disabled: model.retired || !model.served }, label));
    }
    select.value = chosen;
    state.defaultNote = answer.default_note;
    describeModel();
  } catch (error) {
    $("model-info").textContent = `Models could not be listed: ${describeError(error)}`;
  }
}

function describeModel() {
  const name = $("model").value;
  const model = state.models.find((m) => m.id === name);
  const parts = [];
  if (!model) {
    if (state.defaultNote) parts.push(state.defaultNote);
  } else {
    const p = model.prices_usd_per_1m_tokens || {};
    parts.push(`${model.id}: text in $${p.text_input ?? "?"}, image in $${p.image_input ?? "?"}, image out $${p.image_output ?? "?"} per 1M tokens.`);
    if (model.retires_on) parts.push(`Retire${model.retired ? "d" : "s"} on ${model.retires_on}${model.successor ? `; successor ${model.successor}` : ""}.`);
    const qualities = $("quality");
    for (const option of qualities.options) option.disabled = !model.qualities.includes(option.value);
  }
  $("model-info").textContent = parts.join(" ");
}

// ---- estimate

function scheduleEstimate() {
  clearTimeout(state.estimateTimer);
  state.estimateTimer = setTimeout(estimate, 350);
}

async function estimate() {
  const out = $("estimate");
  const seq = ++state.estimateSeq;
  if (!hasKey()) return void (out.textContent = "Enter your API key to see the cost.");
  if (state.images.length === 0) return void (out.textContent = "Add an image to see the cost.");
  if (!$("prompt").value.trim()) return void (out.textContent = "Write a prompt to see the cost.");
  out.textContent = "Estimating…";
  try {
    const answer = await call("POST", "/v1/edits/estimate", { json: await requestBody() });
    if (seq !== state.estimateSeq) return;
    const left = Object.entries(answer.budget_remaining_usd || {})
      .filter(([, value]) => value !== null)
      .map(([period, value]) => `${dollars(value)} ${PERIODS[period] || period}`);
    const short = Object.values(answer.budget_remaining_usd || {}).some(
      (value) => value !== null && answer.estimated_usd !== null && Number(value) < Number(answer.estimated_usd),
    );
    out.replaceChildren(
      el("strong", { class: "cost" }, `Up to ${dollars(answer.estimated_usd)}`),
      ` on ${answer.model} at ${answer.provider_size}. `,
      left.length ? `Budget left: ${left.join(", ")}.` : "No budget limit.",
      answer.model_note ? ` ${answer.model_note}` : "",
      short ? el("span", { class: "error-text" }, " Over budget: this edit would be refused.") : "",
    );
    out.dataset.usd = answer.estimated_usd ?? "";
  } catch (error) {
    if (seq !== state.estimateSeq) return;
    out.textContent = `Cannot run as set: ${describeError(error)}`;
    out.dataset.usd = "";
  }
}

// ---- run and follow

function setStatus(job) {
  const parts = [`${job.id}: ${job.status}`];
  if (job.status === "queued" && job.queue_position !== null && job.queue_position !== undefined) {
    parts.push(job.queue_position === 0 ? "next in line" : `${job.queue_position} ahead in the queue`);
  }
  if (job.last_error && job.status === "queued") parts.push(`retrying after ${job.last_error.code}`);
  $("status").textContent = parts.join(" · ");
}

async function run() {
  showError(null);
  if (!hasKey()) return showError("Enter your API key first.");
  if (state.images.length === 0) return showError("Add at least one image.");
  const button = $("run");
  button.disabled = true;
  try {
    const body = await requestBody();
    const job = await call("POST", "/v1/edits", {
      json: body,
      extraHeaders: { "Idempotency-Key": crypto.randomUUID() },
    });
    loadHistory();
    open(job).catch(showError);
  } catch (error) {
    showError(error);
  } finally {
    button.disabled = false;
  }
}

async function open(job) {
  if (state.following) state.following.abort();
  state.job = job;
  showError(null);
  setStatus(job);
  clearResult();
  if (job.status === "queued" || job.status === "running") {
    const control = new AbortController();
    state.following = control;
    job = await watch(job, control.signal);
    if (control.signal.aborted) return;
    state.following = null;
    loadHistory();
  }
  await finished(job);
}

async function watch(job, signal) {
  let current = job;
  for (let attempt = 0; attempt < 30 && !signal.aborted; attempt++) {
    try {
      const ended = await follow(
        job.id,
        (name, data) => {
          if (name === "status") current = data;
          else if (name === "queue_position") current = { ...current, queue_position: data.queue_position };
          else return;
          setStatus(current);
        },
        signal,
      );
      if (ended) break;
    } catch (error) {
      if (signal.aborted) break;
      if (error instanceof ApiError && error.status < 500) {
        showError(error);
        break;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  if (signal.aborted) return current;
  return call("GET", `/v1/edits/${encodeURIComponent(job.id)}`);
}

function clearResult() {
  for (const url of state.outputUrls) URL.revokeObjectURL(url);
  state.outputUrls = [];
  $("compare").hidden = true;
  $("outputs").replaceChildren();
  $("charged").textContent = "";
}

async function finished(job) {
  state.job = job;
  setStatus(job);
  if (job.error) showError(`${job.error.message} (${job.error.code})`);
  const cost = job.cost || {};
  if (cost.actual_usd !== null && cost.actual_usd !== undefined) {
    $("charged").textContent = `Charged ${dollars(cost.actual_usd)} (estimated up to ${dollars(cost.estimated_usd)}).`;
  }
  if (job.status !== "succeeded") return;
  const urls = [];
  for (let i = 0; i < job.outputs.length; i++) {
    try {
      urls.push(await blobUrl(outputPath(job, i)));
    } catch (error) {
      showError(error);
      return;
    }
  }
  if (state.job !== job) return urls.forEach((u) => URL.revokeObjectURL(u));
  state.outputUrls = urls;
  const source = job.sources && job.sources[0] ? state.sourceUrls.get(job.sources[0].id) : null;
  showCompare(source, urls[0]);
  const format = (job.provider_request && job.provider_request.output_format) || "png";
  $("outputs").replaceChildren(
    ...urls.map((url, i) =>
      el(
        "div",
        { class: "output" },
        urls.length > 1
          ? el("button", { type: "button", onclick: () => showCompare(source, url) }, `Show ${i + 1}`)
          : "",
        el("a", { class: "button", href: url, download: `${job.id}-${i}.${format}` }, `Download ${i + 1}`),
      ),
    ),
  );
}

function showCompare(source, result) {
  const before = $("before");
  const after = $("after");
  // At most 70% of the screen high: the box keeps the result's ratio, so the source lines up.
  after.onload = () => {
    const ratio = after.naturalWidth / after.naturalHeight;
    $("stage").style.setProperty("max-width", `calc(70vh * ${ratio.toFixed(4)})`);
  };
  after.src = result;
  if (source) {
    before.src = source;
    before.hidden = false;
    $("slider").disabled = false;
  } else {
    before.removeAttribute("src");
    before.hidden = true;
    $("slider").disabled = true;
  }
  $("compare").hidden = false;
  slide();
}

function slide() {
  // The source shows left of the divider, the result right of it.
  const value = $("before").hidden ? 0 : Number($("slider").value);
  $("after").style.setProperty("clip-path", `inset(0 0 0 ${value}%)`);
}

// ---- history

async function loadHistory() {
  const list = $("history");
  if (!hasKey()) return list.replaceChildren(el("li", { class: "muted" }, "Enter your API key to see your jobs."));
  try {
    const page = await call("GET", `/v1/edits?limit=${HISTORY_SIZE}`);
    if (page.data.length === 0) return list.replaceChildren(el("li", { class: "muted" }, "No jobs yet."));
    list.replaceChildren(...page.data.map(historyItem));
  } catch (error) {
    list.replaceChildren(el("li", { class: "error" }, `History unavailable: ${describeError(error)}`));
  }
}

function historyItem(job) {
  const picture = el("img", { alt: `Result of ${job.id}`, hidden: true });
  const thumb = el("div", { class: "thumb" }, picture);
  if (job.status === "succeeded" && job.outputs.length) {
    // Outputs never change: each thumbnail is fetched once per page.
    if (!state.thumbs.has(job.id)) state.thumbs.set(job.id, blobUrl(outputPath(job, 0)));
    state.thumbs
      .get(job.id)
      .then((url) => {
        picture.src = url;
        picture.hidden = false;
      })
      .catch(() => state.thumbs.delete(job.id));
  }
  const cost = job.cost.actual_usd ?? job.cost.estimated_usd;
  const costLabel = job.cost.actual_usd !== null ? `charged ${dollars(cost)}` : `up to ${dollars(cost)}`;
  const actions = [
    el("button", { type: "button", onclick: () => open(job).catch(showError) }, "Open"),
    el("button", { type: "button", onclick: () => rerun(job) }, "Re-run with changes"),
  ];
  if (job.status === "queued" || job.status === "running") {
    actions.unshift(el("button", { type: "button", onclick: () => cancel(job) }, "Cancel"));
  }
  return el(
    "li",
    { class: "job", id: `job-${job.id}` },
    thumb,
    el(
      "div",
      { class: "job-text" },
      el("span", { class: `badge ${job.status}` }, job.status),
      el("span", { class: "prompt" }, job.prompt),
      el("span", { class: "muted" }, `${job.id} · ${job.model} · ${costLabel}`),
      job.error ? el("span", { class: "error-text" }, `${job.error.message} (${job.error.code})`) : "",
    ),
    el("div", { class: "actions" }, ...actions),
  );
}

async function cancel(job) {
  try {
    const canceled = await call("POST", `/v1/edits/${encodeURIComponent(job.id)}/cancel`);
    if (state.job && state.job.id === job.id) setStatus(canceled);
  } catch (error) {
    showError(error);
  }
  loadHistory();
}

function rerun(job) {
  const o = job.options || {};
  $("prompt").value = job.prompt;
  if (o.strength) $("strength").value = o.strength;
  if (o.quality) $("quality").value = o.quality;
  $("n").value = o.n || 1;
  const known = [...$("aspect").options].some((opt) => opt.value === o.aspect_ratio);
  if (o.aspect_ratio && known) $("aspect").value = o.aspect_ratio;
  else if (o.aspect_ratio) {
    $("aspect").value = "custom";
    $("custom-ratio").value = o.aspect_ratio;
  }
  $("custom-ratio-row").hidden = $("aspect").value !== "custom";
  $("model").value = job.model_requested || "";
  describeModel();
  const kept = job.sources.filter((s) => state.sourceUrls.has(s.id));
  if (kept.length === job.sources.length && !job.mask) {
    // Same pictures as this page still has: reuse their uploads.
    state.images = job.sources.map((s) => ({
      file: { name: s.id, size: s.bytes },
      url: state.sourceUrls.get(s.id),
      width: s.width,
      height: s.height,
      id: s.id,
    }));
    renderThumbs();
    resetMask();
  } else {
    showError("Options copied from the job; choose its images again to re-run it.");
  }
  $("prompt").focus();
  scheduleEstimate();
}

// ---- wiring

function wire() {
  const stored = localStorage.getItem(KEY_STORE) || "";
  $("key").value = stored;
  setKey(stored);
  $("key-state").textContent = stored ? "saved in this browser" : "";
  let keyTimer = 0;
  $("key").addEventListener("input", () => {
    clearTimeout(keyTimer);
    keyTimer = setTimeout(keyChanged, 400);
  });

  $("images").addEventListener("change", (e) => addFiles(e.target.files));
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    addFiles(e.dataTransfer.files);
  });

  $("mask-clear").addEventListener("click", () => painter.clear());
  $("mask-file").addEventListener("change", (e) => {
    const file = e.target.files[0] || null;
    painter.clear(false);
    state.maskFile = file;
    maskChanged();
  });

  for (const id of ["prompt", "strength", "quality", "n", "custom-ratio"]) {
    $(id).addEventListener("input", scheduleEstimate);
  }
  $("aspect").addEventListener("change", () => {
    $("custom-ratio-row").hidden = $("aspect").value !== "custom";
    scheduleEstimate();
  });
  $("model").addEventListener("change", () => {
    describeModel();
    scheduleEstimate();
  });
  $("run").addEventListener("click", run);
  $("slider").addEventListener("input", slide);
  $("refresh").addEventListener("click", loadHistory);

  loadModels();
  loadHistory();
  scheduleEstimate();
}

wire();
