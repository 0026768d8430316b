/**
 * One session: its owner, age and expiry, and its variables with type, constraints,
 * version and writer, kept live by a watch (a write from anywhere shows within a frame of
 * arriving). A variable opens in a side panel with its history and an edit form.
 */
import {
  Anchor,
  Badge,
  Button,
  Drawer,
  Group,
  Loader,
  Pagination,
  Stack,
  Table,
  Text,
  TextInput,
  Title,
} from "@mantine/core";
import { memo, useEffect, useMemo, useState } from "react";
import { host, ok } from "../api/client";
import { valueText } from "../api/values";
import { useVariableWatch, type WatchedVariable, type WatchState } from "../api/watch";
import { TableHead } from "../components/table-head";
import { ago, until } from "../components/time";
import { KindBadge } from "../components/value-view";
import { usePolling } from "../hooks";
import { href } from "../router";
import { constraintText } from "./variable-form";
import { VariablePanel } from "./variable-panel";

const ROWS_PER_PAGE = 100;

function SessionHeader({ sessionId }: { sessionId: string }) {
  const info = usePolling(
    async (signal) => ok(await host.getSessionInfo({ sessionId }, { signal })).session,
    5000,
    [sessionId],
  );
  const session = info.data;
  return (
    <Stack gap={4}>
      <Group gap="sm">
        <Anchor href={href("sessions")} size="sm">
          ← sessions
        </Anchor>
        <Title order={2} ff="monospace" data-testid="session-title">
          {sessionId}
        </Title>
        <Anchor href={href("runs", sessionId)} size="sm">
          agent runs →
        </Anchor>
      </Group>
      {info.error !== undefined && <Text c="red">{info.error}</Text>}
      {session !== undefined && (
        <Text size="sm" c="dimmed">
          owner <b>{session.owner}</b> · created {ago(session.createdAt)} · last used{" "}
          {ago(session.lastAccessedAt)} · expires {until(session.expiresAt)} · {session.toolCount} tools
          {Object.keys(session.metadata).length > 0 && ` · ${JSON.stringify(session.metadata)}`}
        </Text>
      )}
    </Stack>
  );
}

/**
 * One variable's row, drawn again only when that variable changes (or the clock used for
 * "updated ... ago" ticks): with 5,000 variables a write must not redraw every row. Its key
 * holds the version, so a changed row is a new element and its highlight plays once.
 */
const VariableRow = memo(function VariableRow({
  sessionId,
  row,
  now,
}: {
  sessionId: string;
  row: WatchedVariable;
  now: number;
}) {
  const { variable } = row;
  const metadata = variable.metadata;
  const writer =
    metadata?.writerLabel && metadata.writerLabel !== metadata.updatedBy
      ? `${metadata.updatedBy} (${metadata.writerLabel})`
      : metadata?.updatedBy;
  return (
    <Table.Tr
      className={`clickable ${row.changedAt > 0 ? "row-changed" : ""}`}
      data-testid={`var-row-${variable.name}`}
      data-version={String(variable.version)}
      onClick={() => {
        window.location.hash = href("sessions", sessionId, variable.name);
      }}
    >
      <Table.Td className="mono">{variable.name}</Table.Td>
      <Table.Td>
        {metadata?.type ?? "?"}
        {metadata?.declared === true && <span className="tag"> declared</span>}
      </Table.Td>
      <Table.Td>
        <span className="mono clamp" data-testid="var-value">
          {valueText(variable.value, 120)}
        </span>{" "}
        <KindBadge value={variable.value} />
      </Table.Td>
      <Table.Td>{String(variable.version)}</Table.Td>
      <Table.Td>{writer}</Table.Td>
      <Table.Td>{ago(metadata?.updatedAt, now)}</Table.Td>
      <Table.Td className="dimmed">{constraintText(metadata?.constraints)}</Table.Td>
    </Table.Tr>
  );
});

/** The time now, refreshed every `intervalMs`: what rows measure "ago" against. */
function useNow(intervalMs: number): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = window.setInterval(() => setNow(Date.now()), intervalMs);
    return () => window.clearInterval(timer);
  }, [intervalMs]);
  return now;
}

/** The variables' heading: the watch's state, how many there are, the name filter, "New variable". */
function VariablesToolbar({
  sessionId,
  watch,
  filter,
  setFilter,
}: {
  sessionId: string;
  watch: WatchState;
  filter: string;
  setFilter: (filter: string) => void;
}) {
  return (
    <Group gap="sm">
      <Title order={4}>Variables</Title>
      <Badge
        variant="light"
        color={watch.ended === undefined ? (watch.ready ? "green" : "gray") : "red"}
        data-testid="watch-state"
      >
        {watch.ended !== undefined ? `session ${watch.ended}` : watch.ready ? "live" : "connecting"}
      </Badge>
      <Text size="sm" c="dimmed" data-testid="variable-count">
        {watch.variables.size} variables
      </Text>
      <TextInput
        size="xs"
        placeholder="filter by name"
        value={filter}
        onChange={(e) => setFilter(e.currentTarget.value)}
      />
      <Button
        size="xs"
        variant="default"
        onClick={() => (window.location.hash = href("sessions", sessionId, "+new"))}
      >
        New variable
      </Button>
    </Group>
  );
}

/** One page of variables, a row each. */
function VariablesTable({
  sessionId,
  rows,
  now,
}: {
  sessionId: string;
  rows: WatchedVariable[];
  now: number;
}) {
  return (
    <Table striped highlightOnHover data-testid="variables-table">
      <TableHead columns={["name", "type", "value", "version", "writer", "updated", "constraints"]} />
      <Table.Tbody>
        {rows.map((row) => (
          <VariableRow
            key={`${row.variable.name}@${row.variable.version}`}
            sessionId={sessionId}
            row={row}
            now={now}
          />
        ))}
      </Table.Tbody>
    </Table>
  );
}

export default function SessionPage({
  sessionId,
  variable,
}: {
  sessionId: string;
  variable: string | undefined;
}) {
  const watch = useVariableWatch(sessionId);
  const [filter, setFilter] = useState("");
  const [page, setPage] = useState(1);
  const rows = useMemo(
    () =>
      [...watch.variables.values()]
        .filter((row) => row.variable.name.includes(filter))
        .sort((a, b) => (a.variable.name < b.variable.name ? -1 : 1)),
    [watch.variables, filter],
  );
  const pages = Math.max(1, Math.ceil(rows.length / ROWS_PER_PAGE));
  const shown = rows.slice(
    (Math.min(page, pages) - 1) * ROWS_PER_PAGE,
    Math.min(page, pages) * ROWS_PER_PAGE,
  );
  const now = useNow(10_000);
  const selected = variable === undefined ? undefined : watch.variables.get(variable);
  return (
    <Stack gap="sm">
      <SessionHeader sessionId={sessionId} />
      <VariablesToolbar sessionId={sessionId} watch={watch} filter={filter} setFilter={setFilter} />
      {watch.error !== undefined && <Text c="red">{watch.error}</Text>}
      {!watch.ready && watch.error === undefined ? (
        <Loader size="sm" />
      ) : (
        <VariablesTable sessionId={sessionId} rows={shown} now={now} />
      )}
      {pages > 1 && <Pagination total={pages} value={Math.min(page, pages)} onChange={setPage} size="sm" />}
      <Drawer
        opened={variable !== undefined}
        onClose={() => (window.location.hash = href("sessions", sessionId))}
        position="right"
        size="lg"
        title={variable === "+new" ? "New variable" : variable}
      >
        {variable !== undefined && (
          <VariablePanel
            sessionId={sessionId}
            name={variable === "+new" ? undefined : variable}
            current={selected}
          />
        )}
      </Drawer>
    </Stack>
  );
}
