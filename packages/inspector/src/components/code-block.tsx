/** A block of text (raw messages, code to copy) with a copy button. */
import { ActionIcon, Box, CopyButton, ScrollArea, Tooltip } from "@mantine/core";

export function CodeBlock({
  text,
  label,
  maxHeight = 320,
}: {
  text: string;
  label: string;
  maxHeight?: number;
}) {
  return (
    <Box pos="relative" aria-label={label}>
      <ScrollArea.Autosize mah={maxHeight} type="auto">
        <pre className="code-block" data-testid={label}>
          {text}
        </pre>
      </ScrollArea.Autosize>
      <CopyButton value={text}>
        {({ copied, copy }) => (
          <Tooltip label={copied ? "copied" : `copy ${label}`} withArrow>
            <ActionIcon
              variant="subtle"
              size="sm"
              onClick={copy}
              pos="absolute"
              top={4}
              right={4}
              aria-label={`copy ${label}`}
            >
              {copied ? "✓" : "⧉"}
            </ActionIcon>
          </Tooltip>
        )}
      </CopyButton>
    </Box>
  );
}
