/**
 * Agent runs: the agents and runs a session records (variables agent_<id> and run_<id>, each
 * the bytes of a message of agents.proto: docs/agents.md), and a run's trajectory as a
 * timeline that grows while the run goes on, since the worker rewrites the record after
 * every step and the page watches it.
 */
import { fromBinary } from "@bufbuild/protobuf";
import { Alert, Anchor, Badge, Card, Grid, Group, Select, Stack, Table, Text, Title } from "@mantine/core";
import { useMemo, useState } from "react";
import { valueText } from "../api/values";
import { useVariableWatch } from "../api/watch";
import { TableHead } from "../components/table-head";
import { ago, duration, msOf } from "../components/time";
import { ValueView } from "../components/value-view";
import {
  type AgentDefinition,
  AgentDefinitionSchema,
  type AgentRun,
  AgentRunSchema,
  AgentRunStatus,
  type AgentRunStep,
} from "../gen/toolbridge/v1/agents_pb";
import type { Value } from "../gen/toolbridge/v1/values_pb";
import { useSessionList } from "../hooks";
import { href } from "../router";

const STATUS: Readonly<Record<number, { label: string; color: string }>> = {
  [AgentRunStatus.RUNNING]: { label: "running", color: "blue" },
  [AgentRunStatus.SUCCEEDED]: { label: "succeeded", color: "green" },
  [AgentRunStatus.FAILED]: { label: "failed", color: "red" },
};

/** Where the records are (docs/agents.md): only these variables are read and followed. */
const RECORD_PREFIXES = ["agent_", "run_"];

function bytesOf(value: Value | undefined): Uint8Array | undefined {
  return value?.kind.case === "bytesValue" ? value.kind.value : undefined;
}

/** The records of a session: definitions and runs decoded from the variables tagged with their schema. */
function useAgentRecords(sessionId: string): {
  agents: AgentDefinition[];
  runs: AgentRun[];
  error: string | undefined;
  ready: boolean;
} {
  const watch = useVariableWatch(sessionId, RECORD_PREFIXES);
  const records = useMemo(() => {
    const agents: AgentDefinition[] = [];
    const runs: AgentRun[] = [];
    for (const { variable } of watch.variables.values()) {
      const schema = variable.metadata?.tags.schema;
      const bytes = bytesOf(variable.value);
      if (bytes === undefined) continue;
      try {
        if (schema === "toolbridge.v1.AgentRun") runs.push(fromBinary(AgentRunSchema, bytes));
        if (schema === "toolbridge.v1.AgentDefinition") agents.push(fromBinary(AgentDefinitionSchema, bytes));
      } catch {
        // A variable tagged as a record that does not decode is not shown as one.
      }
    }
    runs.sort((a, b) => (msOf(b.startedAt) ?? 0) - (msOf(a.startedAt) ?? 0));
    return { agents, runs };
  }, [watch.variables]);
  return { ...records, error: watch.error, ready: watch.ready };
}

function runDuration(run: AgentRun): string {
  const started = msOf(run.startedAt);
  if (started === undefined) return "–";
  return duration((msOf(run.finishedAt) ?? Date.now()) - started);
}

function MapView({ entries }: { entries: { key: string; value?: Value | undefined }[] }) {
  return (
    <Stack gap={2}>
      {entries.map((entry) => (
        <Group key={entry.key} gap={6} wrap="nowrap" align="flex-start">
          <Text size="sm" ff="monospace" c="dimmed">
            {entry.key}:
          </Text>
          <ValueView value={entry.value} />
        </Group>
      ))}
    </Stack>
  );
}

/** One ReAct step: its thought, the call it chose, what came back, and how long it took (when recorded). */
function StepView({ step, index }: { step: AgentRunStep; index: number }) {
  const started = msOf(step.startedAt);
  const finished = msOf(step.finishedAt);
  const failed = step.errorType !== "";
  const args = (step.toolArgs?.entries ?? []).map((entry) => `${entry.key}=${valueText(entry.value, 60)}`);
  return (
    <div className={`timeline-step ${failed ? "failed" : ""}`} data-testid="run-step">
      <Group gap="xs">
        <Text fw={600}>step {index + 1}</Text>
        {started !== undefined && finished !== undefined && (
          <Text size="xs" c="dimmed" data-testid="step-duration">
            {duration(finished - started)}
          </Text>
        )}
        {failed && <Badge color="red">{step.errorType}</Badge>}
      </Group>
      <Text size="sm" fs="italic" c="dimmed" data-testid="step-thought">
        {step.thought}
      </Text>
      <Text size="sm" ff="monospace" data-testid="step-call">
        {step.toolName}({args.join(", ")})
      </Text>
      <Group gap={6} align="flex-start" wrap="nowrap">
        <Text size="sm" c="dimmed">
          →
        </Text>
        <ValueView value={step.observation} />
      </Group>
    </div>
  );
}

function Timeline({ run }: { run: AgentRun }) {
  const status = STATUS[run.status] ?? { label: "unknown", color: "gray" };
  return (
    <Stack gap="sm" data-testid="run-timeline">
      <Group gap="sm">
        <Title order={4} ff="monospace">
          {run.runId}
        </Title>
        <Badge color={status.color} data-testid="run-status">
          {status.label}
        </Badge>
        <Text size="sm" c="dimmed">
          {run.steps.length} steps · {runDuration(run)} · {run.lm} · {run.worker}
        </Text>
      </Group>
      <Card withBorder padding="xs">
        <Text size="sm" fw={600}>
          inputs
        </Text>
        <MapView entries={run.inputs?.entries ?? []} />
      </Card>
      {run.steps.map((step, index) => (
        // biome-ignore lint/suspicious/noArrayIndexKey: steps only ever grow, in order.
        <StepView key={index} step={step} index={index} />
      ))}
      {run.status === AgentRunStatus.RUNNING && (
        <Text size="sm" c="blue" data-testid="run-waiting">
          waiting for the next step…
        </Text>
      )}
      {run.status === AgentRunStatus.FAILED && (
        <Alert color="red" title="the run failed" data-testid="run-error">
          {run.error}
        </Alert>
      )}
      {run.status === AgentRunStatus.SUCCEEDED && (
        <Card withBorder padding="xs" data-testid="run-outputs">
          <Text size="sm" fw={600}>
            answer
          </Text>
          <MapView entries={run.outputs?.entries ?? []} />
          {run.reasoning !== "" && (
            <Text size="sm" c="dimmed" mt={4}>
              {run.reasoning}
            </Text>
          )}
        </Card>
      )}
    </Stack>
  );
}

function SessionPicker({ sessionId }: { sessionId: string | undefined }) {
  const [picking, setPicking] = useState(sessionId === undefined);
  const sessions = useSessionList(picking);
  return (
    <Select
      size="xs"
      label="session"
      placeholder="pick a session"
      searchable
      w={360}
      data={[
        ...new Set([
          ...(sessionId === undefined ? [] : [sessionId]),
          ...(sessions.data ?? []).map((s) => s.sessionId),
        ]),
      ]}
      value={sessionId ?? null}
      onChange={(value) => {
        if (value !== null) window.location.hash = href("runs", value);
      }}
      onDropdownOpen={() => setPicking(true)}
      data-testid="runs-session"
    />
  );
}

export default function RunsPage({
  sessionId,
  runId,
}: {
  sessionId: string | undefined;
  runId: string | undefined;
}) {
  return (
    <Stack gap="sm">
      <Group gap="sm" align="flex-end">
        <Title order={2}>Agent runs</Title>
        <SessionPicker sessionId={sessionId} />
        {sessionId !== undefined && (
          <Anchor href={href("sessions", sessionId)} size="sm">
            variables →
          </Anchor>
        )}
      </Group>
      {sessionId === undefined ? (
        <Text c="dimmed">Pick a session: its agents and their runs are recorded in its variables.</Text>
      ) : (
        <SessionRuns sessionId={sessionId} runId={runId} />
      )}
    </Stack>
  );
}

function SessionRuns({ sessionId, runId }: { sessionId: string; runId: string | undefined }) {
  const { agents, runs, error, ready } = useAgentRecords(sessionId);
  const selected = runs.find((run) => run.runId === runId) ?? runs[0];
  return (
    <Grid>
      <Grid.Col span={5}>
        {error !== undefined && <Text c="red">{error}</Text>}
        <Text size="sm" c="dimmed" mb={4}>
          {agents.length} agents:{" "}
          {agents.map((agent) => `${agent.agentId} (${agent.signature})`).join(", ") || "none"}
        </Text>
        <Table highlightOnHover data-testid="runs-table">
          <TableHead columns={["run", "status", "steps", "took"]} />
          <Table.Tbody>
            {runs.map((run) => (
              <Table.Tr
                key={run.runId}
                className="clickable"
                data-testid="run-row"
                onClick={() => (window.location.hash = href("runs", sessionId, run.runId))}
                bg={run === selected ? "var(--mantine-color-indigo-light)" : undefined}
              >
                <Table.Td ff="monospace" fz="sm">
                  {run.runId}
                </Table.Td>
                <Table.Td>
                  <Badge
                    size="sm"
                    style={{ overflow: "visible" }}
                    color={STATUS[run.status]?.color ?? "gray"}
                  >
                    {STATUS[run.status]?.label ?? "?"}
                  </Badge>
                </Table.Td>
                <Table.Td>{run.steps.length}</Table.Td>
                <Table.Td title={`started ${ago(run.startedAt)}`}>{runDuration(run)}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
        {ready && runs.length === 0 && (
          <Text c="dimmed">No runs recorded in this session yet; they show here as they start.</Text>
        )}
      </Grid.Col>
      <Grid.Col span={7}>{selected !== undefined && <Timeline run={selected} />}</Grid.Col>
    </Grid>
  );
}
