/**
 * One variable: its value in full, its metadata, its recent history and the edit form. The
 * history is the session's change log as the host keeps it for resuming watches
 * (watchHistory): a watch of this one name resumed from the oldest change still kept, which
 * then goes on live.
 */
import { Badge, Divider, Group, Stack, Table, Text, Title } from "@mantine/core";
import { useEffect, useState } from "react";
import { describeFailure, host, isAbort } from "../api/client";
import { valueText } from "../api/values";
import type { WatchedVariable } from "../api/watch";
import { ago, clock } from "../components/time";
import { ValueView } from "../components/value-view";
import { type VariableUpdate, VariableUpdateKind } from "../gen/toolbridge/v1/toolbridge_pb";
import { constraintText, VariableForm } from "./variable-form";

/** Changes of the history shown, newest first. */
const HISTORY_SHOWN = 50;

/**
 * The kept changes of `name`, then its new ones. A resume from 0 that the host refuses
 * because older changes are gone (history_trimmed) is retried from the oldest it keeps.
 */
function useHistory(
  sessionId: string,
  name: string,
): { changes: VariableUpdate[]; error: string | undefined } {
  const [changes, setChanges] = useState<VariableUpdate[]>([]);
  const [error, setError] = useState<string>();
  useEffect(() => {
    const controller = new AbortController();
    const seen: VariableUpdate[] = [];
    setChanges([]);
    const run = async () => {
      let after = 0n;
      for (let attempt = 0; attempt < 3; attempt++) {
        for await (const update of host.watchSessionVariables(
          { sessionId, variableNames: [name], resumeAfterSequence: after },
          { signal: controller.signal },
        )) {
          const oldest = update.error?.details.oldest;
          if (
            update.error !== undefined &&
            update.error.details.reason === "history_trimmed" &&
            oldest !== undefined
          ) {
            after = BigInt(oldest) - 1n;
            break;
          }
          if (update.error !== undefined) {
            setError(`${update.error.type}: ${update.error.message}`);
            return;
          }
          if (update.kind === VariableUpdateKind.SET || update.kind === VariableUpdateKind.DELETED) {
            seen.unshift(update);
            setChanges(seen.slice(0, HISTORY_SHOWN));
          }
          if (update.kind === VariableUpdateKind.SESSION_ENDED) return;
        }
        if (controller.signal.aborted) return;
      }
    };
    run().catch((failure: unknown) => {
      if (!isAbort(failure) && !controller.signal.aborted) setError(describeFailure(failure));
    });
    return () => controller.abort();
  }, [sessionId, name]);
  return { changes, error };
}

function History({ sessionId, name }: { sessionId: string; name: string }) {
  const { changes, error } = useHistory(sessionId, name);
  return (
    <Stack gap={4}>
      <Title order={5}>History</Title>
      {error !== undefined && <Text c="red">{error}</Text>}
      {changes.length === 0 && error === undefined && (
        <Text size="sm" c="dimmed">
          No change kept (the host keeps a session's latest changes: watchHistory).
        </Text>
      )}
      <Table data-testid="variable-history">
        <Table.Tbody>
          {changes.map((change) => (
            <Table.Tr key={String(change.sequence)}>
              <Table.Td>v{String(change.version)}</Table.Td>
              <Table.Td ff="monospace">
                {change.kind === VariableUpdateKind.DELETED ? (
                  <Badge color="red">deleted</Badge>
                ) : (
                  valueText(change.value, 80)
                )}
              </Table.Td>
              <Table.Td>{change.metadata?.updatedBy}</Table.Td>
              <Table.Td>{clock(change.metadata?.updatedAt)}</Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    </Stack>
  );
}

export function VariablePanel({
  sessionId,
  name,
  current,
}: {
  sessionId: string;
  name: string | undefined;
  current: WatchedVariable | undefined;
}) {
  if (name === undefined) {
    return (
      <VariableForm
        target={{ sessionId, name: undefined, value: undefined, version: undefined, metadata: undefined }}
      />
    );
  }
  if (current === undefined) return <Text c="dimmed">No variable '{name}' in this session (now).</Text>;
  const { variable } = current;
  const metadata = variable.metadata;
  return (
    <Stack gap="sm" data-testid="variable-panel">
      <Group gap="xs">
        <Badge>{metadata?.type}</Badge>
        {metadata?.declared === true && <Badge variant="outline">declared</Badge>}
        <Text size="sm">version {String(variable.version)}</Text>
      </Group>
      <ValueView value={variable.value} />
      <Text size="sm" c="dimmed">
        created by {metadata?.createdBy} {ago(metadata?.createdAt)} · last written by {metadata?.updatedBy}
        {metadata?.writerLabel ? ` (${metadata.writerLabel})` : ""} {ago(metadata?.updatedAt)}
      </Text>
      {constraintText(metadata?.constraints) !== "" && (
        <Text size="sm">constraints: {constraintText(metadata?.constraints)}</Text>
      )}
      {metadata !== undefined && Object.keys(metadata.tags).length > 0 && (
        <Text size="sm" ff="monospace">
          tags {JSON.stringify(metadata.tags)}
        </Text>
      )}
      <Divider />
      <VariableForm
        key={String(variable.version)}
        target={{ sessionId, name, value: variable.value, version: variable.version, metadata }}
      />
      <Divider />
      <History sessionId={sessionId} name={name} />
    </Stack>
  );
}
