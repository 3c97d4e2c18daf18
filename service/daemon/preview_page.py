"""The preview page (inline, so it ships with the package without package-data)."""

PAGE = """\
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>FlexLive — live preview</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 1rem; background: #111; color: #eee; }
  #view { display: flex; gap: 1rem; align-items: flex-start; flex-wrap: wrap; }
  #frame { max-width: 100%; background: #222; min-width: 320px; min-height: 240px; }
  table { border-collapse: collapse; }
  td, th { padding: 0.2rem 0.6rem; border-bottom: 1px solid #333; text-align: left; }
  .live { color: #3c3; } .spoof { color: #e44; } .uncertain { color: #fb0; }
  #state.bad { color: #e44; }
  #health span { margin-right: 0.8rem; padding: 0.1rem 0.4rem; border-radius: 0.2rem; }
  #health .used { background: #264; } #health .dropped { background: #722; }
  #health .absent { background: #333; color: #888; }
  #events { list-style: none; padding: 0; display: flex; gap: 0.6rem; flex-wrap: wrap; }
  #events li { background: #1b1b1b; padding: 0.3rem; font-size: 0.85rem; }
  #events img { display: block; height: 96px; }
</style>
</head>
<body>
<h1>FlexLive live preview</h1>
<p>Source: <span id="source">–</span> · state: <span id="state">connecting…</span> ·
   <span id="fps">0</span> fps · frame <span id="seq">–</span></p>
<p id="health">sensors: –</p>
<div id="view">
  <img id="frame" alt="latest analysed frame" data-frames="0">
  <table id="faces"><thead><tr><th>track</th><th>decision</th><th>score</th><th>frames</th>
  <th>reasons</th></tr></thead><tbody></tbody></table>
</div>
<h2>Last decisions</h2>
<ul id="events"></ul>
<script>
const img = document.getElementById("frame");
let shown = 0, lastSeq = null;
async function refreshFrame() {
  try {
    const r = await fetch("preview.jpg?t=" + Date.now(), {cache: "no-store"});
    const seq = r.headers.get("X-Frame-Seq");
    if (r.ok && seq !== lastSeq) {
      const url = URL.createObjectURL(await r.blob());
      await new Promise((done) => { img.onload = done; img.onerror = done; img.src = url; });
      if (img.dataset.url) URL.revokeObjectURL(img.dataset.url);
      img.dataset.url = url;
      lastSeq = seq;
      shown += 1;
      img.dataset.frames = String(shown);
      img.dataset.seq = seq;
    }
  } catch (e) { /* the daemon may be restarting: keep polling */ }
  setTimeout(refreshFrame, 100);
}
async function refreshStatus() {
  try {
    const s = await (await fetch("status", {cache: "no-store"})).json();
    document.getElementById("source").textContent = s.source || "–";
    const st = document.getElementById("state");
    st.textContent = s.ready ? "ready" : "not ready: " + s.detail;
    st.className = s.ready ? "" : "bad";
    document.getElementById("fps").textContent = s.fps_processed;
    document.getElementById("seq").textContent = s.seq ?? "–";
    showHealth(s.modalities);
    const body = document.querySelector("#faces tbody");
    body.replaceChildren(...(s.faces || []).map((f) => {
      const tr = document.createElement("tr");
      const cells = ["#" + f.track_id, f.decision, f.score === null ? "–" : f.score.toFixed(3),
                     f.frames, (f.reasons || []).join(", ")];
      cells.forEach((c, i) => { const td = document.createElement("td"); td.textContent = c;
        if (i === 1) td.className = f.decision; tr.appendChild(td); });
      return tr;
    }));
  } catch (e) { document.getElementById("state").textContent = "daemon unreachable"; }
  setTimeout(refreshStatus, 500);
}
function showHealth(mods) {
  const names = {rgb: "colour", depth: "depth", ir: "IR"};
  const box = document.getElementById("health");
  box.replaceChildren(document.createTextNode("sensors: "), ...Object.entries(mods || {}).map(
    ([m, h]) => { const s = document.createElement("span"); s.className = h.state;
      s.dataset.modality = m;
      s.textContent = names[m] + ": " + (h.reason || h.state); return s; }));
}
let lastEvent = null;
async function refreshEvents() {
  try {
    const list = (await (await fetch("events", {cache: "no-store"})).json()).events || [];
    const newest = list.length ? list[0].id : null;
    if (newest !== lastEvent) {
      lastEvent = newest;
      document.getElementById("events").replaceChildren(...list.map((e) => {
        const li = document.createElement("li");
        li.dataset.id = e.id;
        if (e.snapshot) { const im = document.createElement("img");
          im.src = "events/" + e.id + ".jpg"; im.alt = "face of track " + e.track_id;
          li.appendChild(im); }
        const t = document.createElement("div");
        t.className = e.decision;
        t.textContent = "#" + e.track_id + " " + e.previous_decision + " → " + e.decision +
          (e.score === null ? "" : " " + e.score.toFixed(2)) + " · " + (e.time || "").slice(11, 19);
        li.appendChild(t);
        return li;
      }));
    }
  } catch (e) { /* keep polling */ }
  setTimeout(refreshEvents, 700);
}
refreshFrame();
refreshStatus();
refreshEvents();
</script>
</body>
</html>
"""
