/**
 * Azure Functions route templates (`companies/{company}/connection`, `{name?}`, `{name:constraint}`,
 * `{*rest}`) matched against a request path below /api, as the Functions host does.
 */
export interface CompiledRoute {
  match(path: string): Record<string, string> | undefined;
}

export function compileRoute(template: string): CompiledRoute {
  const names: string[] = [];
  const pattern = template
    .replace(/^\/+|\/+$/g, "")
    .split("/")
    .map((segment) => {
      const parameter = segment.match(/^\{(\*?)([A-Za-z_][A-Za-z0-9_]*)(?::[^}?]+)?(\?)?\}$/);
      if (!parameter) return `/${escapeRegExp(segment)}`;
      const [, catchAll, name, optional] = parameter;
      names.push(name!);
      const body = catchAll ? "(.*)" : "([^/]+)";
      return optional || catchAll ? `(?:/${body})?` : `/${body}`;
    })
    .join("");
  const regex = new RegExp(`^${pattern}/?$`, "i");
  return {
    match(path) {
      const found = regex.exec(path.startsWith("/") ? path : `/${path}`);
      if (!found) return undefined;
      const params: Record<string, string> = {};
      try {
        names.forEach((name, index) => {
          const value = found[index + 1];
          if (value !== undefined) params[name] = decodeURIComponent(value);
        });
      } catch {
        return undefined; // malformed %-escape: no route matches, as in the Functions host
      }
      return params;
    },
  };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
