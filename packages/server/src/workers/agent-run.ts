/**
 * What one DSPy agent run takes and reports, the same whether it runs on a warm worker of
 * the pool (workers/agents.ts) or in an interpreter of its own (agents/python-agent.ts).
 */

/**
 * What the worker reports as the run goes (`--events`): one JSON object per line of its
 * stdout, named by `kind`, with the run's id and the fields of the step in camelCase, as in
 * the run's record (`AgentRunStep`).
 */
export type AgentEvent =
  | { kind: "run_started"; runId: string; agentId: string; lm: string }
  | { kind: "thought"; runId: string; step: number; text: string }
  | { kind: "tool_call"; runId: string; step: number; toolName: string; toolArgs: Record<string, unknown> }
  | {
      kind: "observation";
      runId: string;
      step: number;
      toolName: string;
      observation: unknown;
      /** The error type when the call failed (the agent then saw the error as its observation). */
      errorType: string | null;
    };

/**
 * What `runAgent` takes: the run itself. No address: a worker attaches only to the host it
 * was started for, with that host's token (`runPythonAgent` adds how to reach a host).
 */
export interface WorkerAgentOptions {
  /** An existing session; the worker attaches to it and uses its tools. */
  sessionId: string;
  /** Run this stored agent (created with `create_react_agent` in Python)... */
  agentId?: string;
  /** ...or define a new one: a DSPy signature (default `question -> answer`), */
  signature?: string;
  /** the tools it may call (default: all of the session's), */
  tools?: readonly string[];
  /** the most ReAct steps (default 5), and optional instructions. */
  maxIters?: number;
  instructions?: string;
  /** The signature's inputs, e.g. `{ question: "..." }`. */
  inputs?: Record<string, unknown>;
  /** A DSPy model string (`openai/gpt-4o-mini`); default: the worker's `TOOLBRIDGE_LM` environment variable. */
  lm?: string;
  /**
   * Your own LM instead: `module:function`, a Python function the worker imports (from `cwd` or
   * `PYTHONPATH`) and calls with no arguments, returning a `dspy.BaseLM`. Takes precedence over `lm`.
   */
  lmFactory?: string;
  /** The scripted DummyLM the worker uses when no LM is named: a built-in name (`shop`) or a JSON file. */
  script?: string;
  onEvent?: (event: AgentEvent) => void;
  /** Aborting sends the worker SIGTERM (a warm worker: cancels the run); the run is recorded as failed. */
  signal?: AbortSignal;
}

export interface PythonAgentResult {
  agentId: string;
  runId: string;
  status: "succeeded" | "failed";
  /** The signature's output fields, e.g. `{ answer: "..." }` (empty when the run failed). */
  outputs: Record<string, unknown>;
  /** Why the run failed, when it did. */
  error: string;
}
