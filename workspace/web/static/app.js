// The workspace's shared script: the player seek used by evidence links, timeline bars and transcript rows.
function seek(t) {
  var p = document.getElementById("player");
  if (!p) return;
  p.currentTime = Math.max(0, Number(t));
  var r = p.play();
  if (r && r.catch) r.catch(function () {});
}
document.addEventListener("click", function (e) {
  var el = e.target.closest ? e.target.closest("[data-seek]") : null;
  if (el) { e.preventDefault(); seek(el.getAttribute("data-seek")); }
});
(function () {
  var p = document.getElementById("player");
  if (!p) return;
  var rows = Array.prototype.slice.call(document.querySelectorAll("tr[data-start]"));
  p.addEventListener("timeupdate", function () {
    rows.forEach(function (r) {
      var on = p.currentTime >= Number(r.dataset.start) && p.currentTime < Number(r.dataset.end);
      r.classList.toggle("playing", on);
    });
  });
})();
window.addEventListener("load", function () {
  if (!window.Plotly) return;
  document.querySelectorAll(".plotly-graph-div").forEach(function (d) { Plotly.Plots.resize(d); });
});
