import type { FieldSpec } from './field.js';
import { auditFields } from './sections/audit.js';
import { clusterFields } from './sections/cluster.js';
import { engineFields } from './sections/engine.js';
import { gatewayFields } from './sections/gateway.js';
import { journalFields } from './sections/journal.js';
import { kafkaFields } from './sections/kafka.js';
import { logFields } from './sections/log.js';
import { moderationFields } from './sections/moderation.js';
import { productFields } from './sections/products.js';
import { projectionFields } from './sections/projection.js';
import { storeFields } from './sections/stores.js';

/** Every configuration setting Stockade has, in documentation order. */
export const configFields: readonly FieldSpec[] = [
  ...engineFields,
  ...journalFields,
  ...kafkaFields,
  ...clusterFields,
  ...logFields,
  ...moderationFields,
  ...gatewayFields,
  ...storeFields,
  ...projectionFields,
  ...productFields,
  ...auditFields,
];
