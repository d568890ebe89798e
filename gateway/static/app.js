// The web page: submit audio, follow jobs, read, hear and fix their transcripts.
// Talks only to this server's own API, with the same calls a script would make.

const KEY = "stt-api-key";
const TERMINAL = new Set(["completed", "failed", "cancelled"]);
const FORMATS = ["srt", "vtt", "txt", "rttm", "json"];
const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b",
                 "#e377c2"];
const $ = (id) => document.getElementById(id);

let current = null;   // the job shown: its id and latest view
let followed = 0;     // bumped to stop following an earlier job
let words = [];       // [start, end, element] of the shown transcript, by start
let audioUrl = null;  // a blob URL to revoke, when the audio came with a key

// --- the API, with the key when one is needed -----------------------------------------

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

function authHeaders() {
  const key = sessionStorage.getItem(KEY);
  return key ? { Authorization: `Bearer ${key}` } : {};
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { ...authHeaders(), ...options.headers } });
  if (response.status === 401) {
    await askKey((await errorOf(response)).message);
    return api(path, options);
  }
  if (!response.ok) {
    const error = await errorOf(response);
    throw new ApiError(response.status, error.message);
  }
  return response;
}

async function errorOf(response) {
  try { return (await response.json()).error; } catch { return { message: response.statusText }; }
}

let asking = null;
function askKey(reason) {
  // Every request that met a 401 waits for the one dialog.
  asking ??= new Promise((resolve) => {
    $("key-reason").textContent = reason;
    $("key-button").hidden = false;
    $("key-dialog").addEventListener("close", () => {
      sessionStorage.setItem(KEY, $("key-input").value.trim());
      asking = null;
      resolve();
    }, { once: true });
    $("key-dialog").showModal();
  });
  return asking;
}

// --- submitting -------------------------------------------------------------------------

function setUpSubmit() {
  const drop = $("drop"), file = $("file");
  for (const name of ["dragenter", "dragover"]) {
    drop.addEventListener(name, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  for (const name of ["dragleave", "drop"]) {
    drop.addEventListener(name, () => drop.classList.remove("over"));
  }
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    if (e.dataTransfer.files.length) file.files = e.dataTransfer.files;
  });
  $("submit-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const form = e.target, status = $("submit-status");
    const body = new FormData();
    if (file.files.length) body.append("file", file.files[0]);
    else if (form.url.value) body.append("url", form.url.value);
    else { status.textContent = "Choose a file or give a URL."; return; }
    for (const name of ["language", "model", "num_speakers", "min_speakers", "max_speakers"]) {
      if (form[name].value) body.append(name, form[name].value);
    }
    body.append("diarize", form.diarize.checked ? "true" : "false");
    if (form.identify.checked) body.append("identify", "true");
    status.textContent = "Uploading…";
    $("submit-button").disabled = true;
    try {
      const { job_id } = await (await api("/jobs", { method: "POST", body })).json();
      status.textContent = "";
      form.reset();
      await refreshJobs();
      location.hash = `job=${job_id}`;
    } catch (error) {
      status.textContent = error.message;
      status.className = "error";
    } finally {
      $("submit-button").disabled = false;
    }
  });
}

async function loadModels() {
  const { data } = await (await api("/v1/models")).json();
  $("models").replaceChildren(...data.map((m) => new Option(m.id)));
}

// --- the list of recent jobs ------------------------------------------------------------

async function refreshJobs() {
  const { jobs } = await (await api("/jobs?limit=20")).json();
  $("jobs").replaceChildren(...jobs.map((job) => {
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.href = `#job=${job.id}`;
    link.textContent = job.input_name || job.id;
    const status = document.createElement("span");
    status.className = "status";
    status.textContent = ` ${job.status}` +
      (TERMINAL.has(job.status) ? "" : ` ${Math.round(job.progress)}%`);
    item.append(link, status);
    return item;
  }));
  return jobs;
}

async function pollJobs() {
  // Often while something runs, rarely when all is still.
  let busy = false;
  try { busy = (await refreshJobs()).some((j) => !TERMINAL.has(j.status)); } catch { /* retried */ }
  setTimeout(pollJobs, busy ? 2000 : 10000);
}

// --- one job ----------------------------------------------------------------------------

async function follow(jobId) {
  const mine = ++followed;
  $("job").hidden = false;
  $("transcript-view").hidden = true;
  let wait = 0;
  while (mine === followed) {
    let job;
    try {
      job = await (await api(`/jobs/${jobId}?wait=${wait}`)).json();
    } catch (error) {
      if (mine !== followed) return;
      $("job-status").textContent = error.message;
      if (error.status === 404) return;
      await new Promise((r) => setTimeout(r, 2000));
      continue;
    }
    if (mine !== followed) return;
    showJob(job);
    if (TERMINAL.has(job.status)) {
      refreshJobs().catch(() => { /* the list's own polling retries */ });
      return;
    }
    wait = 30;
  }
}

function showJob(job) {
  const first = current?.id !== job.id;
  current = job;
  $("job-title").textContent = job.input_name || job.id;
  $("job-status").textContent = job.status + (job.run > 1 ? ` (run ${job.run})` : "") +
    (job.error ? `: ${job.error}` : "");
  $("stages").replaceChildren(...Object.entries(job.stages).map(([name, stage]) => {
    const box = document.createElement("div");
    box.className = "stage";
    box.dataset.stage = name;
    box.dataset.status = stage.status;
    const id = `stage-${name}`;
    const label = document.createElement("label");
    label.htmlFor = id;
    label.textContent = `${name}: ${stage.status}`;
    const bar = document.createElement("progress");
    bar.id = id;
    bar.max = 100;  // the API's progress is in percent
    bar.value = stage.progress;
    const detail = document.createElement("div");
    detail.className = "detail";
    detail.textContent = stage.detail || "";
    box.append(label, bar, detail);
    return box;
  }));
  $("rerun-speakers").value ||= job.options.num_speakers ?? "";
  if (job.status === "completed" && job.result) showResult(job, first);
  else if (first) $("downloads").replaceChildren();
}

function speakerColour(result, speaker) {
  const index = result.speakers.indexOf(speaker);
  return index < 0 ? "#999" : COLOURS[index % COLOURS.length];
}

function clock(seconds) {
  const s = Math.floor(seconds);
  const hh = Math.floor(s / 3600), mm = Math.floor((s % 3600) / 60), ss = s % 60;
  return (hh ? `${hh}:${String(mm).padStart(2, "0")}` : `${mm}`) + `:${String(ss).padStart(2, "0")}`;
}

function showResult(job, first) {
  const result = job.result;
  $("transcript-view").hidden = false;
  showSpeakers(job);
  showTimeline(result);
  showTranscript(result);
  showDownloads(job);
  if (first || !$("player").src) loadAudio(job.id);
}

function showSpeakers(job) {
  const result = job.result;
  const names = result.speaker_names.length ? result.speaker_names
    : result.speakers.map((s) => ({ label: s, name: s }));
  $("speakers").replaceChildren(...names.map(({ label, name }) => {
    const item = document.createElement("li");
    item.style.borderColor = speakerColour(result, name);
    const input = document.createElement("input");
    input.value = name;
    input.setAttribute("aria-label", `Name of ${label}`);
    input.dataset.label = label;
    const rename = async () => {
      const wanted = input.value.trim();
      if (!wanted || wanted === name) return;
      try {
        const renamed = await (await api(`/jobs/${job.id}/speakers`, {
          method: "PATCH", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ [label]: wanted, enroll: $("enroll").checked }) })).json();
        showJob({ ...current, result: renamed });
      } catch (error) {
        input.value = name;
        $("job-status").textContent = error.message;
      }
    };
    input.addEventListener("change", rename);
    input.addEventListener("keydown", (e) => { if (e.key === "Enter") input.blur(); });
    item.append(input);
    return item;
  }));
}

function showTimeline(result) {
  const svg = $("timeline"), ns = "http://www.w3.org/2000/svg";
  const span = Math.max(result.duration, 1e-3);
  svg.setAttribute("viewBox", `0 0 ${span} 1`);
  svg.replaceChildren(...result.segments.filter((s) => s.speaker).map((segment) => {
    const rect = document.createElementNS(ns, "rect");
    rect.setAttribute("x", segment.start);
    rect.setAttribute("width", Math.max(segment.end - segment.start, span / 1000));
    rect.setAttribute("y", 0);
    rect.setAttribute("height", 1);
    rect.setAttribute("fill", speakerColour(result, segment.speaker));
    const title = document.createElementNS(ns, "title");
    title.textContent = `${segment.speaker} ${clock(segment.start)}–${clock(segment.end)}`;
    rect.append(title);
    rect.addEventListener("click", () => seek(segment.start));
    return rect;
  }));
}

function paragraphs(result) {
  // A paragraph per speaker turn: consecutive segments of one speaker together.
  const turns = [];
  for (const segment of result.segments) {
    const last = turns.at(-1);
    if (last && last.speaker === segment.speaker) last.segments.push(segment);
    else turns.push({ speaker: segment.speaker, start: segment.start, segments: [segment] });
  }
  return turns;
}

function showTranscript(result) {
  words = [];
  $("transcript").replaceChildren(...paragraphs(result).map((turn) => {
    const p = document.createElement("p");
    p.style.borderColor = speakerColour(result, turn.speaker);
    const time = document.createElement("time");
    time.textContent = clock(turn.start);
    p.append(time);
    if (turn.speaker) {
      const who = document.createElement("span");
      who.className = "who";
      who.textContent = turn.speaker;
      p.append(who);
    }
    for (const segment of turn.segments) {
      const pieces = segment.words.length ? segment.words : [{ word: segment.text, start: segment.start, end: segment.end }];
      for (const w of pieces) {
        const span = document.createElement("span");
        span.className = "word";
        span.textContent = w.word;
        if (w.start != null) {
          span.dataset.start = w.start;
          span.tabIndex = 0;
          span.setAttribute("role", "button");
          span.addEventListener("click", () => seek(w.start));
          span.addEventListener("keydown", (e) => {
            if (e.key === "Enter" || e.key === " ") { e.preventDefault(); seek(w.start); }
          });
          words.push([w.start, w.end ?? w.start, span]);
        }
        p.append(span, " ");
      }
    }
    return p;
  }));
  words.sort((a, b) => a[0] - b[0]);
}

async function loadAudio(jobId) {
  const player = $("player");
  if (audioUrl) URL.revokeObjectURL(audioUrl);
  audioUrl = null;
  const headers = authHeaders();
  if (!headers.Authorization) {
    // Streamed with Range requests: the player fetches only what it plays.
    player.src = `/jobs/${jobId}/audio`;
    return;
  }
  // A media element cannot send a header: with a key, the audio comes whole, as a blob.
  audioUrl = URL.createObjectURL(await (await api(`/jobs/${jobId}/audio`)).blob());
  player.src = audioUrl;
}

function seek(seconds) {
  const player = $("player");
  player.currentTime = seconds;
  highlight();
  player.play().catch(() => { /* no autoplay allowed: seeking is enough */ });
}

function highlight() {
  const t = $("player").currentTime;
  // The last word starting at or before t.
  let lo = 0, hi = words.length - 1, found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (words[mid][0] <= t) { found = mid; lo = mid + 1; } else hi = mid - 1;
  }
  for (const old of document.querySelectorAll(".word.current")) old.classList.remove("current");
  if (found >= 0) words[found][2].classList.add("current");
}

function showDownloads(job) {
  $("downloads").replaceChildren("Download:", ...FORMATS.map((format) => {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "link";
    button.textContent = format;
    button.setAttribute("aria-label", `Download ${format}`);
    button.addEventListener("click", () => download(job.id, format));
    return button;
  }));
}

async function download(jobId, format) {
  // Fetched rather than linked, so that the key goes with it.
  const blob = await (await api(`/jobs/${jobId}/result?format=${format}`)).blob();
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = `${jobId}.${format}`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

function setUpJobActions() {
  $("player").addEventListener("timeupdate", highlight);
  $("player").addEventListener("seeked", highlight);
  $("rerun-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await api(`/jobs/${current.id}/rerun`, {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ from_stage: "diarize", num_speakers: Number($("rerun-speakers").value) }) });
      follow(current.id);
    } catch (error) {
      $("job-status").textContent = error.message;
    }
  });
  $("delete-button").addEventListener("click", async () => {
    if (!confirm("Delete this job and all its files?")) return;
    try {
      await api(`/jobs/${current.id}`, { method: "DELETE" });
      followed++;
      current = null;
      $("job").hidden = true;
      history.replaceState(null, "", location.pathname);
      await refreshJobs();
    } catch (error) {
      $("job-status").textContent = error.message;
    }
  });
}

function route() {
  const match = location.hash.match(/^#job=([0-9a-f]+)$/);
  if (match) follow(match[1]);
}

setUpSubmit();
setUpJobActions();
$("key-button").addEventListener("click", () => askKey("Change the API key of this tab."));
window.addEventListener("hashchange", route);
if (sessionStorage.getItem(KEY)) $("key-button").hidden = false;
route();
pollJobs();
loadModels().catch(() => { /* the model field stays free text */ });
