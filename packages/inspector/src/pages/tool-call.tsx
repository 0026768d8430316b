/**
 * A tool's call form (generated from its JSON Schema by RJSF: nested objects, arrays, enums,
 * $ref/$defs, defaults, required marks), the call (ExecuteTool, or StreamTool chunk by
 * chunk with a cancel button that reaches the tool's AbortSignal), the typed request and
 * response raw beside the rendered result, and the same call to copy. Loaded only when a
 * tool is opened: the form library and its validator are most of the page's weight.
 */
import { Alert, Badge, Button, Grid, Group, Stack, Tabs, Text } from "@mantine/core";
import Form from "@rjsf/mantine";
import type { RJSFSchema } from "@rjsf/utils";
import { customizeValidator } from "@rjsf/validator-ajv8";
import Ajv2020 from "ajv/dist/2020";
import { useMemo, useState } from "react";
import { grpcurlSnippet, pythonSnippet, typescriptSnippet } from "../api/snippets";
import { type Outcome, useToolCall } from "../api/tool-runs";
import type { Json, JsonSchema } from "../api/values";
import { CodeBlock } from "../components/code-block";
import { ValueView } from "../components/value-view";
import type { ErrorInfo, ToolSpec } from "../gen/toolbridge/v1/toolbridge_pb";
import { useHostInfo } from "../hooks";

// The schemas tools export are draft 2020-12 (zod, pydantic); Ajv's default class is draft-07.
const validator = customizeValidator({
  AjvClass: Ajv2020 as unknown as NonNullable<Parameters<typeof customizeValidator>[0]>["AjvClass"],
});

function parametersOf(tool: ToolSpec): JsonSchema {
  try {
    const { $schema: _ignored, ...schema } = JSON.parse(tool.parametersSchema || "{}") as JsonSchema;
    return schema;
  } catch {
    return { type: "object" };
  }
}

const pretty = (value: unknown) => JSON.stringify(value, null, 2);

function ErrorView({ error }: { error: ErrorInfo | string }) {
  if (typeof error === "string")
    return (
      <Alert color="red" data-testid="call-error">
        {error}
      </Alert>
    );
  return (
    <Alert color="red" title={error.type} data-testid="call-error">
      {error.message}
      {Object.keys(error.details).length > 0 && <pre>{pretty(error.details)}</pre>}
    </Alert>
  );
}

function OutcomeView({ outcome, streaming }: { outcome: Outcome; streaming: boolean }) {
  return (
    <Stack gap="xs" data-testid="call-outcome">
      <Group gap="xs">
        <Text fw={600}>Result</Text>
        <Badge
          data-testid="call-status"
          color={outcome.state === "failed" ? "red" : outcome.state === "done" ? "green" : "gray"}
        >
          {outcome.state}
        </Badge>
        {streaming && (
          <Text size="sm" c="dimmed" data-testid="chunk-count">
            {outcome.chunks.length} chunks
          </Text>
        )}
      </Group>
      {outcome.state === "failed" && <ErrorView error={outcome.error} />}
      {outcome.state === "done" && !streaming && (
        <div data-testid="call-result">
          <ValueView value={outcome.result} />
        </div>
      )}
      {streaming && (
        <Stack gap={2} data-testid="chunks">
          {outcome.chunks.map((chunk, index) => (
            // biome-ignore lint/suspicious/noArrayIndexKey: chunks only ever grow, in order.
            <Group key={index} gap={6} data-testid="chunk" wrap="nowrap" align="flex-start">
              <Text size="xs" c="dimmed" ff="monospace" w={32}>
                #{index}
              </Text>
              <ValueView value={chunk} />
            </Group>
          ))}
        </Stack>
      )}
    </Stack>
  );
}

export default function ToolCall({ tool, sessionId }: { tool: ToolSpec; sessionId: string }) {
  const { config, description } = useHostInfo();
  const schema = useMemo(() => parametersOf(tool), [tool]);
  const [formData, setFormData] = useState<Record<string, Json>>({});
  const where = {
    target: config?.target ?? "127.0.0.1:50051",
    tls: config?.tls ?? false,
    authenticated: description?.authentication ?? false,
  };
  const { streaming, outcome, raw, copy, call, cancel } = useToolCall(tool, sessionId, schema, where);

  return (
    <Grid>
      <Grid.Col span={6}>
        <div data-testid="tool-form">
          <Form
            schema={schema as RJSFSchema}
            validator={validator}
            formData={formData}
            onChange={(event) => setFormData((event.formData ?? {}) as Record<string, Json>)}
            onSubmit={(event) => void call((event.formData ?? {}) as Record<string, Json>)}
            noHtml5Validate
            uiSchema={{ "ui:submitButtonOptions": { submitText: streaming ? "Stream" : "Call" } }}
          />
        </div>
        {outcome?.state === "running" && (
          <Button color="red" variant="light" mt="sm" onClick={cancel} data-testid="cancel-call">
            Cancel
          </Button>
        )}
      </Grid.Col>
      <Grid.Col span={6}>
        <Stack gap="sm">
          {outcome !== undefined && <OutcomeView outcome={outcome} streaming={streaming} />}
          {raw !== undefined && copy !== undefined && (
            <Tabs defaultValue="raw">
              <Tabs.List>
                <Tabs.Tab value="raw">Raw</Tabs.Tab>
                <Tabs.Tab value="python">Python</Tabs.Tab>
                <Tabs.Tab value="typescript">TypeScript</Tabs.Tab>
                <Tabs.Tab value="grpcurl">grpcurl</Tabs.Tab>
              </Tabs.List>
              <Tabs.Panel value="raw" pt="xs">
                <Stack gap="xs">
                  <CodeBlock text={raw.request} label="raw request" maxHeight={220} />
                  <CodeBlock
                    text={raw.responses.join("\n") || "(waiting)"}
                    label="raw response"
                    maxHeight={260}
                  />
                </Stack>
              </Tabs.Panel>
              <Tabs.Panel value="python" pt="xs">
                <CodeBlock text={pythonSnippet(copy)} label="python" />
              </Tabs.Panel>
              <Tabs.Panel value="typescript" pt="xs">
                <CodeBlock text={typescriptSnippet(copy)} label="typescript" />
              </Tabs.Panel>
              <Tabs.Panel value="grpcurl" pt="xs">
                <CodeBlock text={grpcurlSnippet(copy)} label="grpcurl" />
              </Tabs.Panel>
            </Tabs>
          )}
        </Stack>
      </Grid.Col>
    </Grid>
  );
}
