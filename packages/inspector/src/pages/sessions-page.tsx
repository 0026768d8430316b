/**
 * Sessions: every live session the caller may see (its own; all of them with the operator
 * role), with owner, age and expiry, a page at a time.
 */
import { Anchor, Button, Group, Loader, Stack, Table, Text, TextInput, Title } from "@mantine/core";
import { useState } from "react";
import { host, ok } from "../api/client";
import { TableHead } from "../components/table-head";
import { ago, until } from "../components/time";
import type { SessionInfo } from "../gen/toolbridge/v1/toolbridge_pb";
import { useHostInfo, usePolling } from "../hooks";
import { href } from "../router";

const PAGE_SIZE = 100;

function SessionsTable({ sessions }: { sessions: readonly SessionInfo[] }) {
  const now = Date.now();
  return (
    <Table striped highlightOnHover data-testid="sessions-table">
      <TableHead columns={["session", "owner", "age", "last used", "expires", "variables", "tools"]} />
      <Table.Tbody>
        {sessions.map((session) => (
          <Table.Tr key={session.sessionId} data-testid="session-row">
            <Table.Td>
              <Anchor href={href("sessions", session.sessionId)} ff="monospace" size="sm">
                {session.sessionId}
              </Anchor>
            </Table.Td>
            <Table.Td>{session.owner}</Table.Td>
            <Table.Td>{ago(session.createdAt, now).replace(" ago", "")}</Table.Td>
            <Table.Td>{ago(session.lastAccessedAt, now)}</Table.Td>
            <Table.Td>{until(session.expiresAt, now)}</Table.Td>
            <Table.Td>{session.variableCount}</Table.Td>
            <Table.Td>{session.toolCount}</Table.Td>
          </Table.Tr>
        ))}
      </Table.Tbody>
    </Table>
  );
}

export default function SessionsPage() {
  const { description } = useHostInfo();
  const [owner, setOwner] = useState("");
  const [pages, setPages] = useState<string[]>([""]);
  const pageToken = pages[pages.length - 1] ?? "";
  const listed = usePolling(
    async (signal) => ok(await host.listSessions({ pageSize: PAGE_SIZE, pageToken, owner }, { signal })),
    3000,
    [pageToken, owner],
  );
  return (
    <Stack gap="sm">
      <Group gap="sm" align="flex-end">
        <Title order={2}>Sessions</Title>
        <Text size="sm" c="dimmed">
          {description?.operator === true
            ? `every session of the host (${description.activeSessions} live)`
            : "the sessions you own"}
        </Text>
        {description?.operator === true && (
          <TextInput
            size="xs"
            label="owner"
            placeholder="any owner"
            value={owner}
            onChange={(event) => {
              setOwner(event.currentTarget.value);
              setPages([""]);
            }}
          />
        )}
      </Group>
      {listed.error !== undefined && <Text c="red">{listed.error}</Text>}
      {listed.data === undefined ? <Loader size="sm" /> : <SessionsTable sessions={listed.data.sessions} />}
      {listed.data?.sessions.length === 0 && <Text c="dimmed">No sessions.</Text>}
      <Group gap="xs">
        <Button
          size="xs"
          variant="default"
          disabled={pages.length === 1}
          onClick={() => setPages(pages.slice(0, -1))}
        >
          Previous
        </Button>
        <Button
          size="xs"
          variant="default"
          disabled={!listed.data?.nextPageToken}
          onClick={() => listed.data && setPages([...pages, listed.data.nextPageToken])}
        >
          Next
        </Button>
        <Text size="xs" c="dimmed">
          page {pages.length}
        </Text>
      </Group>
    </Stack>
  );
}
