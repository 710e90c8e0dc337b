// "Talk to this agent": a browser call over WebRTC (POST /api/v1/calls/web) with
// the call's live transcript read from its Server-Sent Events stream
// (GET /api/v1/calls/{id}/events, read with fetch() so the API key goes in the
// Authorization header, never in a URL).
//
//   import { mountTalkToAgent } from "./webcall.js";
//   mountTalkToAgent(section, { agentId, getApiKey: () => sessionStorage.getItem("flireo.apiKey") });

const TERMINAL = new Set(["ended", "failed", "rejected"]);
const ROLE_LABEL = { assistant: "Agent", user: "You" };
const GATHER_TIMEOUT_MS = 5000;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === false || value == null) continue;
    if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) node.append(child);
  return node;
}

function waitForIceGathering(pc, timeoutMs) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    };
    const check = () => {
      if (pc.iceGatheringState === "complete") done();
    };
    const timer = setTimeout(done, timeoutMs); // send what was gathered so far
    pc.addEventListener("icegatheringstatechange", check);
  });
}

async function errorMessage(response) {
  try {
    const body = await response.json();
    if (body && body.error && body.error.message) return body.error.message;
  } catch {
    /* not JSON */
  }
  return `HTTP ${response.status}`;
}

// Reads an SSE response body; calls onEvent(type, data) per message.
async function readEvents(response, onEvent) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let type = "message";
  let data = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let nl;
    while ((nl = buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + (buffer.startsWith("\r\n", nl) ? 2 : 1));
      if (line === "") {
        if (data.length) {
          let parsed = data.join("\n");
          try {
            parsed = JSON.parse(parsed);
          } catch {
            /* keep the text */
          }
          onEvent(type, parsed);
        }
        type = "message";
        data = [];
      } else if (line.startsWith(":")) {
        /* heartbeat */
      } else if (line.startsWith("event:")) {
        type = line.slice(6).trim();
      } else if (line.startsWith("data:")) {
        data.push(line.slice(5).replace(/^ /, ""));
      }
    }
  }
}

export function mountTalkToAgent(container, { agentId, getApiKey, baseUrl = "" }) {
  const api = `${baseUrl}/api/v1`;
  const headingId = `talk-heading-${Math.random().toString(36).slice(2, 8)}`;
  const talk = el("button", { type: "button", class: "button" }, "Talk to this agent");
  const hangUp = el("button", { type: "button", class: "button secondary", disabled: true }, "Hang up");
  const status = el("p", { class: "webcall-status", role: "status", "aria-live": "polite" }, "Ready. Your browser will ask for the microphone.");
  const transcript = el("ol", { class: "webcall-transcript", "aria-label": "Live transcript", "aria-live": "polite" });
  const audio = el("audio", { autoplay: true, "aria-label": "Agent's voice" });
  audio.hidden = true;
  container.replaceChildren(
    el("h2", { id: headingId }, "Talk to this agent"),
    el("p", { class: "hint" }, "A call from this browser: same engine, tools and webhooks as a phone call."),
    el("div", { class: "actions" }, talk, hangUp),
    status,
    transcript,
    audio,
  );
  if (!container.getAttribute("aria-labelledby") && !container.getAttribute("aria-label")) {
    container.setAttribute("aria-labelledby", headingId);
  }

  let pc = null;
  let microphone = null;
  let events = null;
  let callId = null;

  const headers = () => ({ Authorization: `Bearer ${getApiKey() || ""}` });
  const say = (text) => {
    status.textContent = text;
  };

  function cleanup() {
    if (events) events.abort();
    events = null;
    if (pc) pc.close();
    pc = null;
    if (microphone) for (const track of microphone.getTracks()) track.stop();
    microphone = null;
    audio.srcObject = null;
    talk.disabled = false;
    hangUp.disabled = true;
  }

  function addLine({ role, text }) {
    const item = el("li", { class: `webcall-line ${role}`, "data-role": role }, el("strong", {}, `${ROLE_LABEL[role] || role}: `), text);
    transcript.append(item);
  }

  function onEvent(type, data) {
    if (type === "transcript" && data && data.text) addLine(data);
    else if (type === "status-update" && data) {
      container.dataset.callStatus = data.status;
      if (data.status === "in-progress") say("Connected: speak now.");
      else if (data.status === "ringing") say("Connecting…");
      if (TERMINAL.has(data.status)) {
        say(`Call ended${data.ended_reason ? ` (${data.ended_reason})` : ""}.`);
        cleanup();
      }
    } else if (type === "tool-call" && data && data.result !== undefined) {
      transcript.append(el("li", { class: "webcall-line tool", "data-role": "tool" }, el("strong", {}, "Tool: "), `${data.name} → ${data.result}`));
    }
  }

  async function follow(id) {
    events = new AbortController();
    const response = await fetch(`${api}/calls/${encodeURIComponent(id)}/events`, {
      headers: { Accept: "text/event-stream", ...headers() },
      signal: events.signal,
      cache: "no-store",
    });
    if (!response.ok) throw new Error(await errorMessage(response));
    await readEvents(response, onEvent);
  }

  async function start() {
    talk.disabled = true;
    transcript.replaceChildren();
    say("Asking for the microphone…");
    try {
      microphone = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
      pc = new RTCPeerConnection({ iceServers: [] });
      for (const track of microphone.getAudioTracks()) pc.addTrack(track, microphone);
      pc.addEventListener("track", (event) => {
        audio.srcObject = event.streams[0] || new MediaStream([event.track]);
        audio.play().catch(() => {});
      });
      pc.addEventListener("connectionstatechange", () => {
        if (pc && pc.connectionState === "failed") say("The connection failed.");
      });
      await pc.setLocalDescription(await pc.createOffer());
      say("Connecting…");
      await waitForIceGathering(pc, GATHER_TIMEOUT_MS);
      const response = await fetch(`${api}/calls/web`, {
        method: "POST",
        headers: { "Content-Type": "application/json", ...headers() },
        body: JSON.stringify({ agent_id: agentId, sdp: pc.localDescription.sdp }),
      });
      if (!response.ok) throw new Error(await errorMessage(response));
      const body = await response.json();
      callId = body.call.id;
      container.dataset.callId = callId;
      await pc.setRemoteDescription({ type: "answer", sdp: body.sdp });
      hangUp.disabled = false;
      follow(callId).catch((error) => {
        if (error.name !== "AbortError") say(`Live transcript unavailable: ${error.message}`);
      });
    } catch (error) {
      say(`Could not start the call: ${error.message}`);
      cleanup();
    }
  }

  async function end() {
    hangUp.disabled = true;
    say("Hanging up…");
    if (callId) {
      try {
        await fetch(`${api}/calls/${encodeURIComponent(callId)}/control`, {
          method: "POST",
          headers: { "Content-Type": "application/json", ...headers() },
          body: JSON.stringify({ type: "end-call" }),
        });
      } catch {
        /* the connection closes below either way */
      }
    }
    // the stream's terminal status-update cleans up; if it does not come, close anyway
    setTimeout(() => {
      if (pc) {
        say("Call ended.");
        cleanup();
      }
    }, 5000);
  }

  talk.addEventListener("click", start);
  hangUp.addEventListener("click", end);
  return { start, hangUp: end, get callId() { return callId; } };
}
