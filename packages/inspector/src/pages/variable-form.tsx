/**
 * The edit form of a variable: an input that fits its type (declared, or the kind of its
 * value when undeclared), and the declared constraints checked before the write is sent
 * (the host checks them again; its answer is shown when it refuses). docs/variables.md has
 * the rules mirrored here.
 */
import { create, equals, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  Alert,
  Button,
  Group,
  NumberInput,
  Select,
  Stack,
  Switch,
  Text,
  Textarea,
  TextInput,
} from "@mantine/core";
import { useState } from "react";
import { describeFailure, host, ok } from "../api/client";
import { type Json, type JsonSchema, jsonToValue, kindName, valueText, valueToJson } from "../api/values";
import type { VariableConstraints, VariableMetadata } from "../gen/toolbridge/v1/toolbridge_pb";
import { type Value, ValueSchema } from "../gen/toolbridge/v1/values_pb";

/** The input kinds of the form. */
const INPUT_KINDS = ["int", "float", "string", "bool", "null", "timestamp", "json"] as const;
type InputKind = (typeof INPUT_KINDS)[number];

/** A declared (or inferred) type's input kind. */
function inputKindOf(type: string, value: Value | undefined): InputKind {
  switch (type) {
    case "integer":
      return "int";
    case "float":
      return "float";
    case "string":
      return "string";
    case "boolean":
      return "bool";
    case "timestamp":
      return "timestamp";
    case "null":
      return "null";
    case "any":
    case "choice":
      return value === undefined ? "json" : inputKindOf(inferred(value), undefined);
    default:
      return "json";
  }
}

/** The type name of a value as the host infers it for an undeclared variable. */
function inferred(value: Value): string {
  const kind = kindName(value);
  return { int: "integer", bool: "boolean" }[kind] ?? kind;
}

const v = (kind: MessageInitShape<typeof ValueSchema>["kind"]): Value => create(ValueSchema, { kind });

/** The typed Value of the form's text; throws Error saying what is wrong. */
export function parseInput(
  kind: InputKind,
  text: string,
  flag: boolean,
  type: string,
  itemType: string,
): Value {
  switch (kind) {
    case "int":
      if (!/^-?\d+$/.test(text.trim())) throw new Error("an integer is needed");
      return v({ case: "intValue", value: BigInt(text.trim()) });
    case "float": {
      const n = Number(text.trim());
      if (text.trim() === "" || Number.isNaN(n)) throw new Error("a number is needed");
      return v({ case: "floatValue", value: n });
    }
    case "string":
      return v({ case: "stringValue", value: text });
    case "bool":
      return v({ case: "boolValue", value: flag });
    case "null":
      return v({ case: "nullValue", value: 0 });
    case "timestamp": {
      const ms = Date.parse(text);
      if (Number.isNaN(ms)) throw new Error("a date and time is needed, e.g. 2026-01-02T03:04:05Z");
      return v({ case: "timestampValue", value: timestampFromMs(ms) });
    }
    case "json": {
      let json: Json;
      try {
        json = JSON.parse(text) as Json;
      } catch (error) {
        throw new Error(`not JSON: ${(error as Error).message}`);
      }
      // Numbers of an embedding, or of a list of floats, are floats even when integral.
      const floats = type === "embedding" || itemType === "float";
      const schema: JsonSchema = floats ? { type: "array", items: { type: "number" } } : {};
      return jsonToValue(json, schema, schema);
    }
  }
}

function numberOf(value: Value): number | undefined {
  const kind = value.kind;
  if (kind.case === "intValue") return Number(kind.value);
  if (kind.case === "floatValue") return kind.value;
  return undefined;
}

function lengthOf(value: Value): number | undefined {
  const kind = value.kind;
  if (kind.case === "stringValue") return [...kind.value].length;
  if (kind.case === "bytesValue") return kind.value.length;
  if (kind.case === "listValue") return kind.value.values.length;
  if (kind.case === "mapValue") return kind.value.entries.length;
  return undefined;
}

const TYPE_KINDS: Readonly<Record<string, readonly string[]>> = {
  boolean: ["bool"],
  integer: ["int"],
  float: ["float", "int"],
  string: ["string"],
  bytes: ["bytes"],
  timestamp: ["timestamp"],
  list: ["list"],
  map: ["map"],
  embedding: ["list", "tensor"],
  tensor: ["tensor"],
};

/** Why `value` breaks the declaration (the rule's name in brackets), or undefined when it keeps it. */
export function constraintProblem(value: Value, metadata: VariableMetadata | undefined): string | undefined {
  if (metadata === undefined || !metadata.declared) return undefined;
  const { type, constraints: c } = metadata;
  const kinds = TYPE_KINDS[type];
  if (kinds !== undefined && !kinds.includes(kindName(value)))
    return `a ${type} is needed, not a ${kindName(value)} (type)`;
  if (c === undefined) return undefined;
  const n = numberOf(value);
  if (n !== undefined && c.min !== undefined && n < c.min) return `must be at least ${c.min} (min)`;
  if (n !== undefined && c.max !== undefined && n > c.max) return `must be at most ${c.max} (max)`;
  const length = lengthOf(value);
  if (length !== undefined && c.minLength !== undefined && length < c.minLength)
    return `needs a length of at least ${c.minLength} (min_length)`;
  if (length !== undefined && c.maxLength !== undefined && length > c.maxLength)
    return `needs a length of at most ${c.maxLength} (max_length)`;
  if (c.pattern !== "" && value.kind.case === "stringValue" && !patternMatches(c.pattern, value.kind.value)) {
    return `must match ${c.pattern} (pattern)`;
  }
  if (c.choices.length > 0 && !c.choices.some((choice) => equals(ValueSchema, choice, value))) {
    return `must be one of ${c.choices.map((choice) => valueText(choice)).join(", ")} (choices)`;
  }
  if (type === "embedding" && c.dimensions > 0 && length !== undefined && length !== c.dimensions) {
    return `needs ${c.dimensions} dimensions (dimensions)`;
  }
  return undefined;
}

/** RE2 patterns mostly read the same in JavaScript; one JavaScript cannot read is left to the host. */
function patternMatches(pattern: string, text: string): boolean {
  try {
    return new RegExp(pattern, "u").test(text);
  } catch {
    return true;
  }
}

/** A declaration's constraints as one line, e.g. "min 0 · max 10 · pattern ^a". */
export function constraintText(c: VariableConstraints | undefined): string {
  if (c === undefined) return "";
  const parts: string[] = [];
  if (c.min !== undefined) parts.push(`min ${c.min}`);
  if (c.max !== undefined) parts.push(`max ${c.max}`);
  if (c.minLength !== undefined) parts.push(`min_length ${c.minLength}`);
  if (c.maxLength !== undefined) parts.push(`max_length ${c.maxLength}`);
  if (c.pattern !== "") parts.push(`pattern ${c.pattern}`);
  if (c.choices.length > 0) parts.push(`choices ${c.choices.map((x) => valueText(x, 30)).join(" | ")}`);
  if (c.itemType !== "") parts.push(`items ${c.itemType}`);
  if (c.dimensions > 0) parts.push(`dimensions ${c.dimensions}`);
  if (c.shape.length > 0) parts.push(`shape [${c.shape.join(", ")}]`);
  return parts.join(" · ");
}

function initialText(value: Value | undefined): string {
  if (value === undefined) return "";
  const kind = value.kind;
  if (kind.case === "stringValue") return kind.value;
  if (kind.case === "intValue" || kind.case === "floatValue") return String(kind.value);
  return JSON.stringify(valueToJson(value));
}

export interface EditTarget {
  readonly sessionId: string;
  /** Undefined for a new variable: the form asks for its name. */
  readonly name: string | undefined;
  readonly value: Value | undefined;
  readonly version: bigint | undefined;
  readonly metadata: VariableMetadata | undefined;
}

/** What the form holds: the input's kind, its text (or switch), and the declaration's choices. */
interface Draft {
  readonly kind: InputKind;
  readonly text: string;
  readonly flag: boolean;
}

/** The value input that fits the kind: a select of the choices, a switch, a number, or text. */
function ValueInput({
  draft,
  choices,
  change,
}: {
  draft: Draft;
  choices: readonly Value[];
  change: (next: Partial<Draft>) => void;
}) {
  const { kind, text, flag } = draft;
  if (choices.length > 0) {
    const data = choices.map((choice) => initialText(choice));
    return (
      <Select label="value" data={data} value={text} onChange={(v) => v !== null && change({ text: v })} />
    );
  }
  if (kind === "bool") {
    return (
      <Switch label="value" checked={flag} onChange={(e) => change({ flag: e.currentTarget.checked })} />
    );
  }
  if (kind === "null") return null;
  if (kind === "int" || kind === "float") {
    return (
      <NumberInput
        label="value"
        value={text}
        onChange={(value) => change({ text: String(value) })}
        allowDecimal={kind === "float"}
        aria-label="value"
      />
    );
  }
  return (
    <Textarea
      label="value"
      value={text}
      onChange={(e) => change({ text: e.currentTarget.value })}
      autosize
      minRows={kind === "json" ? 4 : 1}
      ff="monospace"
      aria-label="value"
    />
  );
}

/**
 * Checks the draft against the declaration and writes it with the version it was read at;
 * resolves with what to show: the problem, or the version written.
 */
async function write(
  target: EditTarget,
  name: string,
  draft: Draft,
): Promise<{ problem?: string; saved?: string }> {
  const metadata = target.metadata;
  let value: Value;
  try {
    value = parseInput(
      draft.kind,
      draft.text,
      draft.flag,
      metadata?.type ?? "",
      metadata?.constraints?.itemType ?? "",
    );
  } catch (error) {
    return { problem: (error as Error).message };
  }
  const broken = constraintProblem(value, metadata);
  if (broken !== undefined) return { problem: broken };
  try {
    const response = ok(
      await host.setSessionVariable({
        sessionId: target.sessionId,
        variableName: name,
        value,
        expectedVersion: target.version ?? 0n,
        createIfMissing: target.version === undefined,
        metadata: { createdBy: "inspector" },
      }),
    );
    return { saved: `saved as version ${response.version}` };
  } catch (error) {
    return { problem: describeFailure(error) };
  }
}

export function VariableForm({ target }: { target: EditTarget }) {
  const type = target.metadata?.type ?? "";
  const declared = target.metadata?.declared === true;
  const [name, setName] = useState(target.name ?? "");
  const [draft, setDraft] = useState<Draft>({
    kind: target.value === undefined ? "string" : inputKindOf(type, target.value),
    text: initialText(target.value),
    flag: target.value?.kind.case === "boolValue" ? target.value.kind.value : false,
  });
  const [outcome, setOutcome] = useState<{ problem?: string; saved?: string }>({});
  const change = (next: Partial<Draft>) => setDraft((old) => ({ ...old, ...next }));
  return (
    <Stack gap="xs" data-testid="variable-form">
      {target.name === undefined && (
        <TextInput label="name" value={name} onChange={(e) => setName(e.currentTarget.value)} />
      )}
      <Group gap="xs" align="flex-end">
        <Select
          label="kind"
          data={[...INPUT_KINDS]}
          value={draft.kind}
          onChange={(value) => value !== null && change({ kind: value as InputKind })}
          disabled={declared && type !== "any"}
          w={120}
        />
        <Text size="sm" c="dimmed">
          {declared ? `declared ${type}` : type === "" ? "undeclared" : `undeclared (now ${type})`}
        </Text>
      </Group>
      <ValueInput draft={draft} choices={target.metadata?.constraints?.choices ?? []} change={change} />
      {outcome.problem !== undefined && (
        <Alert color="red" data-testid="variable-problem">
          {outcome.problem}
        </Alert>
      )}
      {outcome.saved !== undefined && (
        <Text size="sm" c="green" data-testid="variable-saved">
          {outcome.saved}
        </Text>
      )}
      <Group>
        <Button
          onClick={() => void write(target, name, draft).then(setOutcome)}
          disabled={name === ""}
          data-testid="variable-save"
        >
          {target.version === undefined ? "Create" : `Write (expects version ${target.version})`}
        </Button>
      </Group>
    </Stack>
  );
}
