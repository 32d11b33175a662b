/**
 * The part of OData v4 query syntax the Dataverse Web API documents for retrieving rows: $filter with
 * eq ne gt ge lt le, and, or, not, parentheses, null, contains/startswith/endswith; $orderby; $select.
 * String comparisons are case-insensitive, as in Dataverse's database collation.
 */
export type Row = Record<string, unknown>;
export type Predicate = (row: Row) => boolean;

export class ODataQueryError extends Error {}

type Token = { kind: "word" | "string" | "punct"; text: string };

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let index = 0;
  while (index < text.length) {
    const char = text[index]!;
    if (/\s/.test(char)) {
      index++;
    } else if (char === "'") {
      let value = "";
      index++;
      for (;;) {
        if (index >= text.length) throw new ODataQueryError("Unterminated string literal in $filter.");
        if (text[index] === "'") {
          if (text[index + 1] === "'") {
            value += "'";
            index += 2;
            continue;
          }
          index++;
          break;
        }
        value += text[index++];
      }
      tokens.push({ kind: "string", text: value });
    } else if ("(),".includes(char)) {
      tokens.push({ kind: "punct", text: char });
      index++;
    } else {
      const match = /^[A-Za-z0-9_.:+\-@/]+/.exec(text.slice(index));
      if (!match) throw new ODataQueryError(`Syntax error at position ${index} in $filter.`);
      tokens.push({ kind: "word", text: match[0] });
      index += match[0].length;
    }
  }
  return tokens;
}

type Operand = (row: Row) => unknown;
const comparisons = new Set(["eq", "ne", "gt", "ge", "lt", "le"]);

/** `property` checks a column name against the table (throwing for unknown ones) before it is used. */
export function parseFilter(text: string, property: (name: string) => void = () => {}): Predicate {
  const tokens = tokenize(text);
  let position = 0;
  const peek = () => tokens[position];
  const next = () => {
    const token = tokens[position++];
    if (!token) throw new ODataQueryError("Unexpected end of $filter.");
    return token;
  };
  const expect = (text: string) => {
    const token = next();
    if (token.text !== text) throw new ODataQueryError(`Expected '${text}' but found '${token.text}' in $filter.`);
  };

  const parseOr = (): Predicate => {
    let left = parseAnd();
    while (peek()?.kind === "word" && peek()!.text.toLowerCase() === "or") {
      next();
      const right = parseAnd();
      const l = left;
      left = (row) => l(row) || right(row);
    }
    return left;
  };
  const parseAnd = (): Predicate => {
    let left = parseUnary();
    while (peek()?.kind === "word" && peek()!.text.toLowerCase() === "and") {
      next();
      const right = parseUnary();
      const l = left;
      left = (row) => l(row) && right(row);
    }
    return left;
  };
  const parseUnary = (): Predicate => {
    const token = peek();
    if (token?.kind === "word" && token.text.toLowerCase() === "not") {
      next();
      const inner = parseUnary();
      return (row) => !inner(row);
    }
    if (token?.kind === "punct" && token.text === "(") {
      next();
      const inner = parseOr();
      expect(")");
      return inner;
    }
    const left = parseOperand();
    const operator = peek();
    if (operator?.kind === "word" && comparisons.has(operator.text.toLowerCase())) {
      next();
      const right = parseOperand();
      return compare(operator.text.toLowerCase(), left, right);
    }
    return (row) => left(row) === true;
  };
  const parseOperand = (): Operand => {
    const token = next();
    if (token.kind === "string") return () => token.text;
    if (token.kind === "punct") throw new ODataQueryError(`Unexpected '${token.text}' in $filter.`);
    const word = token.text;
    const lower = word.toLowerCase();
    if (peek()?.text === "(" && ["contains", "startswith", "endswith"].includes(lower)) {
      next();
      const field = parseOperand();
      expect(",");
      const value = parseOperand();
      expect(")");
      return (row) => {
        const haystack = String(field(row) ?? "").toLowerCase();
        const needle = String(value(row) ?? "").toLowerCase();
        return lower === "contains" ? haystack.includes(needle) : lower === "startswith" ? haystack.startsWith(needle) : haystack.endsWith(needle);
      };
    }
    if (lower === "null") return () => null;
    if (lower === "true") return () => true;
    if (lower === "false") return () => false;
    if (/^-?\d+(\.\d+)?$/.test(word)) return () => Number(word);
    if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(word)) return () => word.toLowerCase();
    if (/^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:\d{2})?)?$/.test(word)) return () => new Date(word);
    if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(word)) {
      property(word);
      return (row) => row[word];
    }
    throw new ODataQueryError(`Could not find a property named '${word}'.`);
  };

  const predicate = parseOr();
  if (position < tokens.length) throw new ODataQueryError(`Syntax error: '${tokens[position]!.text}' is unexpected in $filter.`);
  return predicate;
}

function compare(operator: string, left: Operand, right: Operand): Predicate {
  return (row) => {
    const a = left(row);
    const b = right(row);
    if (a === null || a === undefined || b === null || b === undefined) {
      const bothNull = (a ?? null) === null && (b ?? null) === null;
      return operator === "eq" ? bothNull : operator === "ne" ? !bothNull : false;
    }
    const order = compareValues(a, b);
    switch (operator) {
      case "eq":
        return order === 0;
      case "ne":
        return order !== 0;
      case "gt":
        return order > 0;
      case "ge":
        return order >= 0;
      case "lt":
        return order < 0;
      default:
        return order <= 0;
    }
  };
}

export function compareValues(a: unknown, b: unknown): number {
  if (a instanceof Date || b instanceof Date) return toTime(a) - toTime(b);
  if (typeof a === "number" && typeof b === "number") return a - b;
  if (typeof a === "boolean" || typeof b === "boolean") return Number(a) - Number(b);
  const left = String(a).toLowerCase();
  const right = String(b).toLowerCase();
  return left < right ? -1 : left > right ? 1 : 0;
}

function toTime(value: unknown): number {
  return value instanceof Date ? value.getTime() : Date.parse(String(value));
}

export interface OrderKey {
  field: string;
  sign: 1 | -1;
}

export function parseOrderKeys(text: string, property: (name: string) => void = () => {}): OrderKey[] {
  return text.split(",").map((part) => {
    const words = part.trim().split(/\s+/);
    const [field, direction = "asc"] = words;
    if (words.length > 2 || !field || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(field) || !/^(asc|desc)$/i.test(direction)) {
      throw new ODataQueryError(`Invalid $orderby: '${part.trim()}'.`);
    }
    property(field);
    return { field, sign: direction.toLowerCase() === "desc" ? -1 : 1 };
  });
}

export function parseOrderBy(text: string, property: (name: string) => void = () => {}): (a: Row, b: Row) => number {
  return comparatorOf(parseOrderKeys(text, property));
}

/** Rows in this order; nulls first ascending, as in SQL Server. */
export function comparatorOf(keys: OrderKey[]): (a: Row, b: Row) => number {
  return (a, b) => {
    for (const { field, sign } of keys) {
      const x = a[field];
      const y = b[field];
      if (x === y || ((x === null || x === undefined) && (y === null || y === undefined))) continue;
      if (x === null || x === undefined) return -sign;
      if (y === null || y === undefined) return sign;
      const order = compareValues(x, y);
      if (order !== 0) return order * sign;
    }
    return 0;
  };
}
