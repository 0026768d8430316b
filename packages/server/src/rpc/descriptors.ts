/**
 * The descriptors server reflection serves: the FileDescriptorSet protoc wrote in
 * scripts/gen.sh, kept as one FileDescriptorProto per .proto file, byte for byte, with
 * an index from every symbol to the file that declares it.
 */
import { fromBinary } from "@bufbuild/protobuf";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import {
  type DescriptorProto,
  type EnumDescriptorProto,
  type FileDescriptorProto,
  FileDescriptorProtoSchema,
} from "@bufbuild/protobuf/wkt";

export interface DescriptorFile {
  readonly name: string;
  /** The serialized FileDescriptorProto exactly as protoc wrote it. */
  readonly bytes: Uint8Array;
  readonly dependencies: readonly string[];
}

export class DescriptorIndex {
  private readonly files = new Map<string, DescriptorFile>();
  private readonly symbols = new Map<string, DescriptorFile>();
  private readonly messageTypes = new Set<string>();

  /** Indexes a serialized FileDescriptorSet (`repeated FileDescriptorProto file = 1`). */
  constructor(fileDescriptorSet: Uint8Array) {
    const reader = new BinaryReader(fileDescriptorSet);
    while (reader.pos < reader.len) {
      const [field, wireType] = reader.tag();
      if (field !== 1 || wireType !== WireType.LengthDelimited) {
        reader.skip(wireType, field);
        continue;
      }
      const bytes = reader.bytes();
      const proto = fromBinary(FileDescriptorProtoSchema, bytes);
      const file: DescriptorFile = { name: proto.name, bytes, dependencies: proto.dependency };
      this.files.set(file.name, file);
      this.indexFile(proto, file);
    }
  }

  /** The file of that name followed by everything it imports, transitively; undefined when unknown. */
  fileByName(name: string): DescriptorFile[] | undefined {
    const file = this.files.get(name);
    return file === undefined ? undefined : this.withDependencies(file);
  }

  /** The file declaring a fully qualified symbol (message, field, enum, value, service, method), with its imports. */
  fileContainingSymbol(symbol: string): DescriptorFile[] | undefined {
    const file = this.symbols.get(symbol.replace(/^\./, ""));
    return file === undefined ? undefined : this.withDependencies(file);
  }

  isMessageType(name: string): boolean {
    return this.messageTypes.has(name.replace(/^\./, ""));
  }

  private withDependencies(root: DescriptorFile): DescriptorFile[] {
    const out: DescriptorFile[] = [];
    const seen = new Set<string>();
    const visit = (file: DescriptorFile) => {
      if (seen.has(file.name)) return;
      seen.add(file.name);
      out.push(file);
      for (const name of file.dependencies) {
        const dependency = this.files.get(name);
        if (dependency !== undefined) visit(dependency);
      }
    };
    visit(root);
    return out;
  }

  private indexFile(proto: FileDescriptorProto, file: DescriptorFile): void {
    const scope = proto.package === "" ? "" : `${proto.package}.`;
    if (proto.package !== "") this.symbols.set(proto.package, file);
    for (const message of proto.messageType) this.indexMessage(message, scope, file);
    for (const type of proto.enumType) this.indexEnum(type, scope, file);
    for (const extension of proto.extension) this.symbols.set(scope + extension.name, file);
    for (const service of proto.service) {
      const name = scope + service.name;
      this.symbols.set(name, file);
      for (const method of service.method) this.symbols.set(`${name}.${method.name}`, file);
    }
  }

  private indexMessage(message: DescriptorProto, scope: string, file: DescriptorFile): void {
    const name = scope + message.name;
    this.symbols.set(name, file);
    this.messageTypes.add(name);
    for (const member of [...message.field, ...message.extension, ...message.oneofDecl])
      this.symbols.set(`${name}.${member.name}`, file);
    for (const nested of message.nestedType) this.indexMessage(nested, `${name}.`, file);
    for (const type of message.enumType) this.indexEnum(type, `${name}.`, file);
  }

  private indexEnum(type: EnumDescriptorProto, scope: string, file: DescriptorFile): void {
    this.symbols.set(scope + type.name, file);
    // As in C++ scoping, enum values are siblings of their enum, not its children.
    for (const value of type.value) this.symbols.set(scope + value.name, file);
  }
}
