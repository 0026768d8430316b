/**
 * Calls and health: the host's health, its workers and the nodes sharing its store; each
 * tool's rate and latency over the last minutes; the latest calls with tool, session,
 * duration and outcome. Calls are this node's (each node keeps its own).
 */
import { Anchor, Badge, Card, Grid, Group, SimpleGrid, Stack, Table, Text, Title } from "@mantine/core";
import { useEffect, useMemo, useRef, useState } from "react";
import { host, ok } from "../api/client";
import { LineChart } from "../components/chart";
import { TableHead } from "../components/table-head";
import { clock, duration, msOf } from "../components/time";
import type {
  CallRecord,
  DescribeHostResponse,
  GetToolStatsResponse,
} from "../gen/toolbridge/v1/toolbridge_pb";
import { usePolling } from "../hooks";
import { href } from "../router";

/** Calls the table keeps, newest first. */
const CALLS_SHOWN = 200;
/** Tools drawn in the charts: the busiest ones. */
const CHARTED_TOOLS = 6;
/** The charts show the last this many intervals. */
const CHART_POINTS = 120;

function HealthCard({ description }: { description: DescribeHostResponse }) {
  return (
    <Card withBorder data-testid="health">
      <Group gap="xs" mb="xs">
        <Title order={5}>Health</Title>
        {description.health.map((entry) => (
          <Badge key={entry.service} color={entry.serving ? "green" : "red"} variant="light">
            {entry.service || "host"}: {entry.serving ? "serving" : "not serving"}
          </Badge>
        ))}
      </Group>
      <Text size="sm">
        toolbridge {description.version} · up {duration(description.uptimeMs)} · store {description.store}
        {description.nodeId !== "" && ` · node ${description.nodeId}`} · {description.activeSessions} live
        sessions · authentication {description.authentication ? "on" : "off"} · TLS{" "}
        {description.tls ? "on" : "off"}
      </Text>
      {description.storeError !== "" && <Text c="red">store: {description.storeError}</Text>}
    </Card>
  );
}

function WorkersCard({ description }: { description: DescribeHostResponse }) {
  return (
    <Card withBorder data-testid="workers">
      <Title order={5} mb="xs">
        Workers{" "}
        {description.workerPoolSize > 0
          ? `(${description.workers.length} of ${description.workerPoolSize}, ${description.workerRestarts} replaced)`
          : ""}
      </Title>
      {description.workerPoolSize === 0 ? (
        <Text size="sm" c="dimmed">
          This host runs no Python workers.
        </Text>
      ) : (
        <Table>
          <TableHead columns={["worker", "pid", "state", "in flight", "served", "memory", "started"]} />
          <Table.Tbody>
            {description.workers.map((worker) => (
              <Table.Tr key={worker.name}>
                <Table.Td>{worker.name}</Table.Td>
                <Table.Td>{worker.pid}</Table.Td>
                <Table.Td>
                  <Badge color={worker.state === "ready" ? "green" : "yellow"} variant="light">
                    {worker.state}
                  </Badge>
                  {worker.agentsReady && " dspy"}
                </Table.Td>
                <Table.Td>{worker.load}</Table.Td>
                <Table.Td>{String(worker.requests)}</Table.Td>
                <Table.Td>{(Number(worker.rssBytes) / 1048576).toFixed(0)} MiB</Table.Td>
                <Table.Td>{clock(worker.startedAt)}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
    </Card>
  );
}

function NodesCard({ description }: { description: DescribeHostResponse }) {
  return (
    <Card withBorder data-testid="nodes">
      <Title order={5} mb="xs">
        Nodes
      </Title>
      {description.nodes.length === 0 ? (
        <Text size="sm" c="dimmed">
          {description.store === "redis"
            ? "No node is advertised in the store."
            : "One node: this host keeps its sessions in its own memory."}
        </Text>
      ) : (
        <Table>
          <Table.Tbody>
            {description.nodes.map((node) => (
              <Table.Tr key={node.nodeId}>
                <Table.Td ff="monospace">{node.nodeId}</Table.Td>
                <Table.Td>{node.address}</Table.Td>
                <Table.Td>{node.tls ? "TLS" : "plaintext"}</Table.Td>
                <Table.Td>{node.self && <Badge variant="light">this node</Badge>}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
    </Card>
  );
}

function ToolCharts({ stats }: { stats: GetToolStatsResponse }) {
  const { times, rate, latency, totals } = useMemo(() => {
    const end = (msOf(stats.end) ?? Date.now()) / 1000;
    const step = stats.intervalMs / 1000;
    const busiest = [...stats.tools]
      .map((tool) => ({ tool, calls: tool.calls.reduce((a, b) => a + b, 0) }))
      .sort((a, b) => b.calls - a.calls);
    const charted = busiest.slice(0, CHARTED_TOOLS).map(({ tool }) => tool);
    const points = Math.min(CHART_POINTS, charted[0]?.calls.length ?? CHART_POINTS);
    const times = Array.from({ length: points }, (_, i) => end - (points - i) * step);
    const last = <T,>(values: readonly T[]) => values.slice(values.length - points);
    return {
      times,
      rate: charted.map((tool) => ({ label: tool.tool, values: last(tool.calls).map((n) => n / step) })),
      latency: charted.map((tool) => ({ label: tool.tool, values: last(tool.meanMs) })),
      totals: busiest,
    };
  }, [stats]);
  if (totals.length === 0) return <Text c="dimmed">No tool was called in the last five minutes.</Text>;
  return (
    <Stack gap="xs">
      <SimpleGrid cols={2}>
        <LineChart title="calls per second" unit="calls/s" times={times} series={rate} />
        <LineChart title="mean latency" unit="ms" times={times} series={latency} />
      </SimpleGrid>
      <Table data-testid="tool-stats">
        <TableHead columns={["tool", "calls (5 min)", "errors", "slowest"]} />
        <Table.Tbody>
          {totals.map(({ tool, calls }) => (
            <Table.Tr key={tool.tool}>
              <Table.Td ff="monospace">{tool.tool}</Table.Td>
              <Table.Td>{calls}</Table.Td>
              <Table.Td>{tool.errors.reduce((a, b) => a + b, 0)}</Table.Td>
              <Table.Td>{duration(Math.max(0, ...tool.maxMs))}</Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    </Stack>
  );
}

/** The latest calls, asked for every second after the newest one already here. */
function useRecentCalls(): { calls: CallRecord[]; error: string | undefined } {
  const [calls, setCalls] = useState<CallRecord[]>([]);
  const last = useRef(0n);
  const polled = usePolling(
    async (signal) => {
      const response = ok(
        await host.listRecentCalls({ afterSequence: last.current, limit: CALLS_SHOWN }, { signal }),
      );
      if (response.lastSequence < last.current) last.current = 0n;
      else last.current = response.lastSequence;
      return response.calls;
    },
    1000,
    [],
  );
  useEffect(() => {
    const fresh = polled.data;
    if (fresh === undefined || fresh.length === 0) return;
    setCalls((old) => [...[...fresh].reverse(), ...old].slice(0, CALLS_SHOWN));
  }, [polled.data]);
  return { calls, error: polled.error };
}

function RecentCalls() {
  const { calls, error } = useRecentCalls();
  return (
    <Stack gap="xs">
      <Title order={4}>Recent calls</Title>
      {error !== undefined && <Text c="red">{error}</Text>}
      <Table striped data-testid="recent-calls">
        <TableHead
          columns={["finished", "tool", "session", "by", "over", "tool time", "host time", "outcome"]}
        />
        <Table.Tbody>
          {calls.map((call) => (
            <Table.Tr key={String(call.sequence)} data-testid="call-row">
              <Table.Td>{clock(call.finishedAt)}</Table.Td>
              <Table.Td ff="monospace">
                {call.tool}
                {call.streamed && " (stream)"}
              </Table.Td>
              <Table.Td>
                <Anchor href={href("sessions", call.sessionId)} ff="monospace" size="sm">
                  {call.sessionId}
                </Anchor>
              </Table.Td>
              <Table.Td>{call.principal}</Table.Td>
              {/* Hosts older than the field recorded only gRPC calls. */}
              <Table.Td>{call.protocol === "mcp" ? "MCP" : "gRPC"}</Table.Td>
              <Table.Td>{duration(call.durationMs)}</Table.Td>
              <Table.Td>{duration(call.hostMs)}</Table.Td>
              <Table.Td title={call.errorMessage}>
                {call.errorType === "" ? (
                  <Badge color="green">ok</Badge>
                ) : (
                  <Badge color="red">{call.errorType}</Badge>
                )}
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      {calls.length === 0 && <Text c="dimmed">No calls yet.</Text>}
    </Stack>
  );
}

export default function CallsPage() {
  const described = usePolling((signal) => host.describeHost({}, { signal }), 2000, []);
  const stats = usePolling((signal) => host.getToolStats({}, { signal }), 2000, []);
  return (
    <Stack gap="md">
      <Title order={2}>Calls and health</Title>
      {described.error !== undefined && <Text c="red">{described.error}</Text>}
      {described.data !== undefined && (
        <Grid>
          <Grid.Col span={12}>
            <HealthCard description={described.data} />
          </Grid.Col>
          <Grid.Col span={7}>
            <WorkersCard description={described.data} />
          </Grid.Col>
          <Grid.Col span={5}>
            <NodesCard description={described.data} />
          </Grid.Col>
        </Grid>
      )}
      {stats.data !== undefined && <ToolCharts stats={stats.data} />}
      <RecentCalls />
    </Stack>
  );
}
