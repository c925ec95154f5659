// spawnlab: apply the reader's chosen theme before the first paint, so a
// page never flashes the other one. The picker in the header
// (app/src/theme.rs) writes the choice; no choice means the system's.
try {
  var theme = localStorage.getItem("spawnlab-theme");
  if (theme === "light" || theme === "dark") {
    document.documentElement.setAttribute("data-theme", theme);
  }
} catch (e) {
  // Storage blocked: the system's theme it is.
}
