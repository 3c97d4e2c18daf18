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
</style>
</head>
<body>
<h1>FlexLive live preview</h1>
<p>Source: <span id="source">–</span> · state: <span id="state">connecting…</span> ·
   <span id="fps">0</span> fps · frame <span id="seq">–</span></p>
<div id="view">
  <img id="frame" alt="latest analysed frame" data-frames="0">
  <table id="faces"><thead><tr><th>track</th><th>decision</th><th>score</th><th>frames</th>
  <th>reasons</th></tr></thead><tbody></tbody></table>
</div>
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
refreshFrame();
refreshStatus();
</script>
</body>
</html>
"""
