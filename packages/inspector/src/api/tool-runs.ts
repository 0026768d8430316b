/**
 * A tool call made from the page: ExecuteTool for a plain tool, StreamTool for a streaming
 * one (each chunk shown as it arrives), cancellable at any time (the browser's request ends,
 * the gateway cancels the host's call, the tool's AbortSignal fires). Keeps the typed
 * request and response as proto3 JSON, raw, for the page to show beside the rendered result.
 */
import { create, toJson } from "@bufbuild/protobuf";
import { useRef, useState } from "react";
import {
  type ErrorInfo,
  ToolCallRequestSchema,
  ToolCallResponseSchema,
  type ToolSpec,
  ToolStreamChunkSchema,
  ToolStreamRequestSchema,
  ToolType,
} from "../gen/toolbridge/v1/toolbridge_pb";
import type { Value } from "../gen/toolbridge/v1/values_pb";
import { describeFailure, host, isAbort } from "./client";
import type { CallToCopy } from "./snippets";
import { type Json, type JsonSchema, kwargsOf } from "./values";

export type Outcome =
  | { readonly state: "running"; readonly chunks: readonly Value[] }
  | { readonly state: "done"; readonly result: Value | undefined; readonly chunks: readonly Value[] }
  | { readonly state: "failed"; readonly error: ErrorInfo | string; readonly chunks: readonly Value[] }
  | { readonly state: "cancelled"; readonly chunks: readonly Value[] };

export interface RawExchange {
  readonly request: string;
  readonly responses: readonly string[];
}

/** Where the host is, as the copied calls address it. */
export interface CallTarget {
  readonly target: string;
  readonly tls: boolean;
  readonly authenticated: boolean;
}

const pretty = (value: unknown) => JSON.stringify(value, null, 2);

interface CallFields {
  readonly sessionId: string;
  readonly toolId: string;
  readonly kwargs: Record<string, Value>;
  readonly requestId: string;
}

export function useToolCall(tool: ToolSpec, sessionId: string, schema: JsonSchema, where: CallTarget) {
  const streaming = tool.type === ToolType.STREAMING;
  const [outcome, setOutcome] = useState<Outcome>();
  const [raw, setRaw] = useState<RawExchange>();
  const [copy, setCopy] = useState<CallToCopy>();
  const running = useRef<AbortController | undefined>(undefined);
  const respond = (message: unknown) =>
    setRaw((old) => old && { ...old, responses: [...old.responses, pretty(message)] });

  const plain = async (fields: CallFields, signal: AbortSignal) => {
    const response = await host.executeTool(create(ToolCallRequestSchema, fields), { signal });
    respond(toJson(ToolCallResponseSchema, response, { useProtoFieldName: true }));
    setOutcome(
      response.success
        ? { state: "done", result: response.result, chunks: [] }
        : { state: "failed", error: response.error ?? "the call failed", chunks: [] },
    );
  };

  const stream = async (fields: CallFields, signal: AbortSignal) => {
    const chunks: Value[] = [];
    for await (const chunk of host.streamTool(create(ToolStreamRequestSchema, fields), { signal })) {
      respond(toJson(ToolStreamChunkSchema, chunk, { useProtoFieldName: true }));
      const { content } = chunk;
      if (content.case === "data") chunks.push(content.value);
      if (content.case === "error")
        setOutcome({ state: "failed", error: content.value, chunks: [...chunks] });
      else
        setOutcome({
          state: content.case === "complete" ? "done" : "running",
          result: undefined,
          chunks: [...chunks],
        });
    }
  };

  const call = async (form: Record<string, Json>) => {
    running.current?.abort();
    const controller = new AbortController();
    running.current = controller;
    const fields: CallFields = {
      sessionId,
      toolId: tool.name,
      kwargs: kwargsOf(form, schema),
      requestId: `inspector-${crypto.randomUUID().slice(0, 12)}`,
    };
    const request = streaming
      ? toJson(ToolStreamRequestSchema, create(ToolStreamRequestSchema, fields), { useProtoFieldName: true })
      : toJson(ToolCallRequestSchema, create(ToolCallRequestSchema, fields), { useProtoFieldName: true });
    setRaw({ request: pretty(request), responses: [] });
    setCopy({
      ...where,
      sessionId,
      tool: tool.name,
      streaming,
      kwargs: fields.kwargs,
      requestJson: JSON.stringify(request),
    });
    setOutcome({ state: "running", chunks: [] });
    try {
      await (streaming ? stream : plain)(fields, controller.signal);
    } catch (error) {
      const cancelled = isAbort(error) || controller.signal.aborted;
      setOutcome((old) =>
        cancelled
          ? { state: "cancelled", chunks: old?.chunks ?? [] }
          : { state: "failed", error: describeFailure(error), chunks: old?.chunks ?? [] },
      );
    } finally {
      if (running.current === controller) running.current = undefined;
    }
  };

  return { streaming, outcome, raw, copy, call, cancel: () => running.current?.abort() };
}
