// The file-drop engine that deliveries call: stage records into part files, upload them and the
// manifest to an SFTP folder or S3 prefix.
export {
  buildManifest,
  dropFiles,
  dropFolder,
  MANIFEST_NAME,
  stageDrop,
  type DropManifest,
  type DropReceipt,
  type DropSpec,
  type StagedDrop,
  type StagedFile,
  type StagingOptions,
} from "./drop.js";
export {
  openDropStore,
  parseDropTarget,
  probeDropTarget,
  s3DropConfigSchema,
  sftpDropConfigSchema,
  validateDropTarget,
  type DropStore,
  type DropTarget,
  type DropTargetType,
  type S3DropConfig,
  type SftpDropConfig,
} from "./targets.js";
export { DROP_FORMATS, dataFileName, writeDataFile, type DataFileStats, type DropFormat } from "./writers.js";
