export { classify, initSqlParser, isSqlParserReady } from './classify';
export { ClassificationCache, createClassifier, DEFAULT_MAX_SQL_LENGTH } from './cache';
export type { ClassificationCacheOptions, ClassificationCacheStats, Classifier } from './cache';
export { UTILITY_CLASSES } from './statement-kinds';
export type { UtilityClass } from './statement-kinds';
export type * from './types';
export { ShapeCache, shapeIndependent } from './shape-cache';
export { shapeKey } from './shape';
export { deepFreeze, statementsWithoutText } from './frozen';
