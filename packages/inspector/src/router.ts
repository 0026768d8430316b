/**
 * Pages are addressed by the URL's fragment (#/tools/add, #/sessions/s1), so the page works
 * under any path the gateway is served at and a reload or a shared link opens the same view.
 */
import { useEffect, useState } from "react";

function parse(hash: string): string[] {
  return hash
    .replace(/^#\/?/, "")
    .split("/")
    .filter((part) => part !== "")
    .map((part) => {
      try {
        return decodeURIComponent(part);
      } catch {
        return part;
      }
    });
}

/** The fragment's path segments, e.g. ["sessions", "s1"]; re-renders when it changes. */
export function useRoute(): string[] {
  const [route, setRoute] = useState(() => parse(window.location.hash));
  useEffect(() => {
    const changed = () => setRoute(parse(window.location.hash));
    window.addEventListener("hashchange", changed);
    return () => window.removeEventListener("hashchange", changed);
  }, []);
  return route;
}

/** The link to a view: href("sessions", id) is "#/sessions/<id>". */
export function href(...parts: string[]): string {
  return `#/${parts.map(encodeURIComponent).join("/")}`;
}
