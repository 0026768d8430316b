/** A Value as a tree: scalars with their kind (3 int, 3.0 float), lists and maps folded past a few items. */
import { Badge, Code, Group, Text } from "@mantine/core";
import { useState } from "react";
import { kindName, valueText } from "../api/values";
import type { Value } from "../gen/toolbridge/v1/values_pb";

const SHOWN_ITEMS = 50;

const KIND_COLORS: Readonly<Record<string, string>> = {
  int: "blue",
  float: "violet",
  string: "green",
  bool: "orange",
  null: "gray",
  bytes: "cyan",
  list: "gray",
  map: "gray",
  tensor: "pink",
  timestamp: "teal",
};

export function KindBadge({ value }: { value: Value | undefined }) {
  const kind = kindName(value);
  return (
    <Badge
      size="xs"
      variant="light"
      color={KIND_COLORS[kind] ?? "gray"}
      data-kind={kind}
      style={{ flexShrink: 0 }}
    >
      {kind}
    </Badge>
  );
}

/** One value, typed: the test and the reader both find its kind in `data-kind`. */
export function ValueView({ value, depth = 0 }: { value: Value | undefined; depth?: number }) {
  const kind = value?.kind;
  if (kind?.case === "listValue" || kind?.case === "mapValue") {
    const items =
      kind.case === "listValue"
        ? kind.value.values.map((item, index) => ({ key: String(index), value: item }))
        : kind.value.entries.map((entry) => ({ key: entry.key, value: entry.value }));
    return <Folded kind={kind.case === "listValue" ? "list" : "map"} items={items} depth={depth} />;
  }
  return (
    <Group gap={6} wrap="nowrap" align="baseline" className="value-scalar">
      <Code data-kind={kindName(value)} style={{ whiteSpace: "pre-wrap", wordBreak: "break-all" }}>
        {valueText(value, 2000)}
      </Code>
      <KindBadge value={value} />
    </Group>
  );
}

function Folded({
  kind,
  items,
  depth,
}: {
  kind: "list" | "map";
  items: { key: string; value: Value | undefined }[];
  depth: number;
}) {
  const [open, setOpen] = useState(depth < 2);
  const [all, setAll] = useState(false);
  const shown = all ? items : items.slice(0, SHOWN_ITEMS);
  return (
    <div data-kind={kind}>
      <Text
        size="sm"
        c="dimmed"
        style={{ cursor: "pointer", userSelect: "none" }}
        onClick={() => setOpen(!open)}
        component="span"
      >
        {open ? "▾" : "▸"} {kind} ({items.length})
      </Text>
      {open && (
        <div style={{ paddingLeft: 16, borderLeft: "1px solid var(--mantine-color-gray-3)" }}>
          {shown.map((item) => (
            <Group key={item.key} gap={6} align="flex-start" wrap="nowrap">
              <Text size="sm" ff="monospace" c="dimmed">
                {kind === "map" ? `${JSON.stringify(item.key)}:` : `${item.key}:`}
              </Text>
              <ValueView value={item.value} depth={depth + 1} />
            </Group>
          ))}
          {!all && items.length > SHOWN_ITEMS && (
            <Text size="sm" c="blue" style={{ cursor: "pointer" }} onClick={() => setAll(true)}>
              … {items.length - SHOWN_ITEMS} more
            </Text>
          )}
        </div>
      )}
    </div>
  );
}
