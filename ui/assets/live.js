// The dashboard's one script, served by the daemon (no framework, no CDN).
// Pages work without it; with it they stay current:
// - a page with an element #live re-reads itself when the store changes
//   (the server's /ui/changes events) and swaps that element, keeping
//   which <details> were open and leaving focus where it was;
// - each <pre data-follow=URL> follows a container's log, line by line.
"use strict";

// Every stream this page holds open. A browser allows a host six HTTP/1.1
// connections, and a page kept in the back/forward cache would hold its
// streams: they are closed when the page is hidden, opened again if it is
// shown from that cache.
const streams = new Set();
function stream(url) {
  const source = new EventSource(url);
  streams.add(source);
  const close = source.close.bind(source);
  source.close = () => { streams.delete(source); close(); };
  return source;
}
window.addEventListener("pagehide", () => { streams.forEach(s => s.close()); });
window.addEventListener("pageshow", event => { if (event.persisted) { refreshLive(); followLogs(); } });

function refreshLive() {
  const live = document.getElementById("live");
  if (!live) return;
  let busy = false;
  let again = false;
  const source = stream("/ui/changes");
  source.addEventListener("change", async function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    try {
      const response = await fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } });
      if (response.ok && response.url === location.href) {
        const fresh = new DOMParser().parseFromString(await response.text(), "text/html").getElementById("live");
        const current = document.getElementById("live");
        // A page being read or typed into is not pulled from under the user.
        if (fresh && current && !current.contains(document.activeElement)) {
          const open = new Set(Array.from(current.querySelectorAll("details[id][open]"), d => d.id));
          current.replaceChildren(...fresh.childNodes);
          current.querySelectorAll("details[id]").forEach(d => { if (open.has(d.id)) d.open = true; });
          document.dispatchEvent(new CustomEvent("driftless:refreshed"));
        }
      }
    } catch (_) {
      // The daemon restarting: EventSource reconnects by itself.
    } finally {
      busy = false;
      if (again) { again = false; refresh(); }
    }
  });
}

function followLogs() {
  document.querySelectorAll("pre[data-follow]").forEach(pre => {
    const open = () => {
      const source = stream(pre.dataset.follow);
      let received = false;
      source.onmessage = event => {
        if (!received) { pre.textContent = ""; received = true; }
        const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
        pre.append(event.data + "\n");
        if (atEnd) pre.scrollTop = pre.scrollHeight;
      };
      source.addEventListener("error", event => {
        if (event.data) pre.textContent = event.data;
        source.close();
        // A container still starting has no log yet: ask again shortly.
        setTimeout(open, 2000);
      });
      source.addEventListener("end", () => {
        source.close();
        pre.append("(the pod is gone)\n");
      });
    };
    open();
  });
}

refreshLive();
followLogs();
