/** The inspector's frame: who is looking at which host, the four pages, and the token in use. */
import { AppShell, Badge, Button, Group, NavLink, PasswordInput, Text, Title, Tooltip } from "@mantine/core";
import { lazy, Suspense, useEffect, useState } from "react";
import { currentToken, describeFailure, host, pageConfig, setToken } from "./api/client";
import { type HostContext, HostInfo } from "./hooks";
import RunsPage from "./pages/runs-page";
import SessionPage from "./pages/session-page";
import SessionsPage from "./pages/sessions-page";
import { ToolsPage } from "./pages/tools-page";
import { href, useRoute } from "./router";

// The calls page brings uPlot, and the tool form RJSF and Ajv: both are loaded when first
// opened. The other pages are small and come with the shell, so that opening one directly
// waits for no second round of downloads.
const CallsPage = lazy(() => import("./pages/calls-page"));

const PAGES = [
  { key: "tools", label: "Tools" },
  { key: "sessions", label: "Sessions & variables" },
  { key: "runs", label: "Agent runs" },
  { key: "calls", label: "Calls & health" },
] as const;

function useHostContext(): HostContext & { epoch: number } {
  const [epoch, setEpoch] = useState(0);
  const [context, setContext] = useState<Omit<HostContext, "refresh">>({
    description: undefined,
    config: undefined,
    error: undefined,
  });
  useEffect(() => {
    let live = true;
    // `epoch` changes with the token: the host then says who the caller is now.
    void epoch;
    Promise.all([host.describeHost({}), pageConfig()]).then(
      ([description, config]) => live && setContext({ description, config, error: undefined }),
      (error: unknown) => live && setContext((old) => ({ ...old, error: describeFailure(error) })),
    );
    return () => {
      live = false;
    };
  }, [epoch]);
  return { ...context, refresh: () => setEpoch((n) => n + 1), epoch };
}

function TokenBox({ onChange }: { onChange: () => void }) {
  const [draft, setDraft] = useState(currentToken());
  return (
    <Group gap={6} wrap="nowrap">
      <PasswordInput
        size="xs"
        placeholder="bearer token"
        aria-label="token"
        value={draft}
        onChange={(event) => setDraft(event.currentTarget.value)}
        w={220}
      />
      <Button
        size="xs"
        variant="light"
        onClick={() => {
          setToken(draft.trim());
          onChange();
        }}
      >
        Use token
      </Button>
    </Group>
  );
}

function Header({ context }: { context: HostContext }) {
  const { description, config, error } = context;
  return (
    <Group h="100%" px="md" justify="space-between" wrap="nowrap">
      <Group gap="sm" wrap="nowrap">
        <Title order={4}>toolbridge inspector</Title>
        {config !== undefined && (
          <Text size="sm" c="dimmed" data-testid="host-target">
            {config.target}
            {config.tls ? " (TLS)" : ""}
          </Text>
        )}
        {description !== undefined && (
          <Tooltip label={`toolbridge ${description.version}, store ${description.store}`}>
            <Group gap={4} wrap="nowrap">
              <Badge variant="light" data-testid="principal">
                {description.principal}
              </Badge>
              {description.operator && (
                <Badge color="orange" variant="filled" data-testid="operator">
                  operator
                </Badge>
              )}
            </Group>
          </Tooltip>
        )}
        {error !== undefined && (
          <Text size="sm" c="red" data-testid="host-error">
            {error}
          </Text>
        )}
      </Group>
      <TokenBox onChange={context.refresh} />
    </Group>
  );
}

export function App() {
  const route = useRoute();
  const context = useHostContext();
  const page = route[0] ?? "tools";
  return (
    <HostInfo.Provider value={context}>
      <AppShell header={{ height: 52 }} navbar={{ width: 200, breakpoint: 0 }} padding="md">
        <AppShell.Header>
          <Header context={context} />
        </AppShell.Header>
        <AppShell.Navbar p="xs">
          {PAGES.map(({ key, label }) => (
            <NavLink
              key={key}
              href={href(key)}
              label={label}
              active={page === key}
              data-testid={`nav-${key}`}
            />
          ))}
        </AppShell.Navbar>
        <AppShell.Main key={context.epoch}>
          <Suspense fallback={<Text c="dimmed">loading…</Text>}>
            {page === "tools" && <ToolsPage selected={route[1]} />}
            {page === "sessions" && route[1] === undefined && <SessionsPage />}
            {page === "sessions" && route[1] !== undefined && (
              <SessionPage sessionId={route[1]} variable={route[2]} />
            )}
            {page === "runs" && <RunsPage sessionId={route[1]} runId={route[2]} />}
            {page === "calls" && <CallsPage />}
          </Suspense>
        </AppShell.Main>
      </AppShell>
    </HostInfo.Provider>
  );
}
