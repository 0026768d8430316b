/**
 * Tools: the registry as a session sees it (global tools, the session's own, the Python
 * workers' and mounted ones), each with its schemas and a form to call it. Calls run in a
 * session of the caller's: by default a scratch session this tab creates.
 */
import {
  Badge,
  Grid,
  Group,
  Loader,
  ScrollArea,
  Select,
  Stack,
  Tabs,
  Text,
  TextInput,
  Title,
} from "@mantine/core";
import { lazy, Suspense, useEffect, useMemo, useState } from "react";
import { describeFailure, host, ok } from "../api/client";
import { CodeBlock } from "../components/code-block";
import { ToolScope, type ToolSpec, ToolType } from "../gen/toolbridge/v1/toolbridge_pb";
import { usePolling, useSessionList } from "../hooks";
import { href } from "../router";

const ToolCall = lazy(() => import("./tool-call"));

const SCRATCH_KEY = "toolbridge.inspector.scratch";

/** This tab's scratch session id: made once, then attached to again (it expires when idle). */
function scratchSessionId(): string {
  let id = sessionStorage.getItem(SCRATCH_KEY);
  if (id === null) {
    id = `inspector-${crypto.randomUUID().slice(0, 8)}`;
    sessionStorage.setItem(SCRATCH_KEY, id);
  }
  return id;
}

function prettyJson(text: string): string {
  if (text === "") return "(none)";
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

function ToolBadges({ tool }: { tool: ToolSpec }) {
  return (
    <Group gap={4}>
      {tool.type === ToolType.STREAMING && (
        <Badge size="xs" color="grape">
          streaming
        </Badge>
      )}
      {tool.metadata.worker_pool !== undefined && (
        <Badge size="xs" color="yellow">
          {tool.metadata.worker_pool} worker
        </Badge>
      )}
      {tool.scope === ToolScope.SESSION && (
        <Badge size="xs" color="teal">
          session
        </Badge>
      )}
      {tool.cacheable && (
        <Badge size="xs" variant="outline">
          cacheable
        </Badge>
      )}
      {tool.idempotent && (
        <Badge size="xs" variant="outline">
          idempotent
        </Badge>
      )}
    </Group>
  );
}

function ToolList({ tools, selected }: { tools: ToolSpec[]; selected: string | undefined }) {
  const [filter, setFilter] = useState("");
  const shown = tools.filter((tool) => tool.name.includes(filter) || tool.description.includes(filter));
  return (
    <Stack gap="xs">
      <TextInput
        size="xs"
        placeholder="filter tools"
        value={filter}
        onChange={(e) => setFilter(e.currentTarget.value)}
      />
      <ScrollArea h="calc(100vh - 220px)" type="auto">
        <Stack gap={2} data-testid="tool-list">
          {shown.map((tool) => (
            <a
              key={tool.name}
              href={href("tools", tool.name)}
              className={`nav-link ${tool.name === selected ? "active" : ""}`}
              style={{ textDecoration: "none", color: "inherit", padding: "6px 8px", borderRadius: 4 }}
              data-testid={`tool-${tool.name}`}
            >
              <Group gap={6} justify="space-between" wrap="nowrap">
                <Text size="sm" fw={600} ff="monospace">
                  {tool.name}
                </Text>
                <ToolBadges tool={tool} />
              </Group>
              <Text size="xs" c="dimmed" lineClamp={1}>
                {tool.description}
              </Text>
            </a>
          ))}
        </Stack>
      </ScrollArea>
    </Stack>
  );
}

function ToolDetail({ tool, sessionId }: { tool: ToolSpec; sessionId: string }) {
  const limits = tool.limits;
  return (
    <Stack gap="sm">
      <Group justify="space-between">
        <Title order={3} ff="monospace" data-testid="tool-title">
          {tool.name}
        </Title>
        <ToolBadges tool={tool} />
      </Group>
      <Text>{tool.description}</Text>
      {limits !== undefined && (
        <Text size="xs" c="dimmed">
          timeout {limits.timeoutMs > 0 ? `${limits.timeoutMs} ms` : "host default"}
          {limits.maxConcurrentCalls > 0 && ` · at most ${limits.maxConcurrentCalls} at once`}
          {limits.rateLimitPerMinute > 0 && ` · ${limits.rateLimitPerMinute} per minute`}
          {Object.keys(tool.metadata).length > 0 && ` · ${JSON.stringify(tool.metadata)}`}
        </Text>
      )}
      <Tabs defaultValue="call" keepMounted={false}>
        <Tabs.List>
          <Tabs.Tab value="call">Call</Tabs.Tab>
          <Tabs.Tab value="parameters">Parameters schema</Tabs.Tab>
          <Tabs.Tab value="output">Output schema</Tabs.Tab>
        </Tabs.List>
        <Tabs.Panel value="call" pt="sm">
          <Suspense fallback={<Loader size="sm" />}>
            <ToolCall key={`${tool.name}/${sessionId}`} tool={tool} sessionId={sessionId} />
          </Suspense>
        </Tabs.Panel>
        <Tabs.Panel value="parameters" pt="sm">
          <CodeBlock text={prettyJson(tool.parametersSchema)} label="parameters schema" maxHeight={600} />
        </Tabs.Panel>
        <Tabs.Panel value="output" pt="sm">
          <CodeBlock text={prettyJson(tool.outputSchema)} label="output schema" maxHeight={600} />
        </Tabs.Panel>
      </Tabs>
    </Stack>
  );
}

/**
 * The session calls run in, once it exists: the tab's scratch session is created (or
 * joined again) first; a session of the caller's picked in the list is used as it is.
 */
function useCallSession(
  sessionId: string,
  scratch: string,
): { ready: string | undefined; failure: string | undefined } {
  const [ready, setReady] = useState<string>();
  const [failure, setFailure] = useState<string>();
  useEffect(() => {
    if (sessionId !== scratch) {
      setReady(sessionId);
      return;
    }
    host.initializeSession({ sessionId, metadata: { created_by: "inspector" } }).then(
      (response) => {
        try {
          ok(response);
          setReady(sessionId);
        } catch (error) {
          setFailure(describeFailure(error));
        }
      },
      (error: unknown) => setFailure(describeFailure(error)),
    );
  }, [sessionId, scratch]);
  return { ready, failure };
}

export function ToolsPage({ selected }: { selected: string | undefined }) {
  const scratch = useMemo(scratchSessionId, []);
  const [sessionId, setSessionId] = useState(scratch);
  const [picking, setPicking] = useState(false);
  const sessions = useSessionList(picking);
  const { ready, failure } = useCallSession(sessionId, scratch);
  const tools = usePolling(
    async (signal) =>
      ready === undefined ? undefined : ok(await host.listTools({ sessionId: ready }, { signal })).tools,
    10_000,
    [ready],
  );
  const options = [
    { value: scratch, label: `${scratch} (scratch)` },
    ...(sessions.data ?? [])
      .filter((s) => s.sessionId !== scratch)
      .map((s) => ({ value: s.sessionId, label: s.sessionId })),
  ];
  const tool = tools.data?.find((candidate) => candidate.name === selected);
  return (
    <Stack gap="sm">
      <Group gap="sm">
        <Title order={2}>Tools</Title>
        <Select
          size="xs"
          label="calls run in session"
          data={options}
          value={sessionId}
          onChange={(value) => value !== null && setSessionId(value)}
          onDropdownOpen={() => setPicking(true)}
          searchable
          w={360}
          data-testid="tool-session"
        />
        {tools.data !== undefined && (
          <Text size="sm" c="dimmed">
            {tools.data.length} tools
          </Text>
        )}
      </Group>
      {(failure ?? tools.error) !== undefined && <Text c="red">{failure ?? tools.error}</Text>}
      <Grid>
        <Grid.Col span={4}>
          {tools.data === undefined ? (
            <Loader size="sm" />
          ) : (
            <ToolList tools={tools.data} selected={selected} />
          )}
        </Grid.Col>
        <Grid.Col span={8}>
          {tool !== undefined && ready !== undefined ? (
            <ToolDetail tool={tool} sessionId={ready} />
          ) : (
            <Text c="dimmed">
              {tools.data === undefined ? "" : "Pick a tool to see its schemas and call it."}
            </Text>
          )}
        </Grid.Col>
      </Grid>
    </Stack>
  );
}
