/** A block of text (raw messages, code to copy) with a copy button. */
import { Box, Button, CopyButton, ScrollArea } from "@mantine/core";

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
          <Button
            variant="subtle"
            size="compact-xs"
            onClick={copy}
            pos="absolute"
            top={4}
            right={12}
            aria-label={`copy ${label}`}
          >
            {copied ? "copied" : "copy"}
          </Button>
        )}
      </CopyButton>
    </Box>
  );
}
