/** Spark class name -> stage loader. */
import type { StageLoader } from './runtime.ts';
import { interaction, vectorAssembler, vectorSizeHint } from './stages/assemble.ts';
import { indexToString, legacyOneHotEncoder, oneHotEncoderModel, stringIndexer, vectorIndexer } from './stages/categorical.ts';
import { generalizedLinearRegression, isotonicRegression, linearRegression, linearSVC, logisticRegression } from './stages/linear-models.ts';
import { kMeans, multilayerPerceptron, naiveBayes } from './stages/other-models.ts';
import { metadataOnly, rFormula } from './stages/rformula.ts';
import { binarizer, bucketizer, imputer } from './stages/scalar.ts';
import {
  elementwiseProduct,
  featureSelector,
  maxAbsScaler,
  minMaxScaler,
  normalizer,
  pca,
  standardScaler,
  vectorSlicer,
} from './stages/scalers.ts';
import { sqlTransformer } from './stages/sql.ts';
import { countVectorizer, hashingTF, idf, nGram, regexTokenizer, stopWordsRemover, tokenizer, word2Vec } from './stages/text.ts';
import {
  decisionTreeClassifier,
  decisionTreeRegressor,
  gbtClassifier,
  gbtRegressor,
  randomForestClassifier,
  randomForestRegressor,
} from './stages/tree-models.ts';

const F = 'org.apache.spark.ml.feature.';
const C = 'org.apache.spark.ml.classification.';
const R = 'org.apache.spark.ml.regression.';

export const STAGE_LOADERS: Record<string, StageLoader> = {
  [`${F}StringIndexerModel`]: stringIndexer,
  [`${F}IndexToString`]: indexToString,
  [`${F}VectorAssembler`]: vectorAssembler,
  [`${F}VectorSizeHint`]: vectorSizeHint,
  [`${F}Interaction`]: interaction,
  [`${F}StandardScalerModel`]: standardScaler,
  [`${F}MaxAbsScalerModel`]: maxAbsScaler,
  [`${F}MinMaxScalerModel`]: minMaxScaler,
  [`${F}Normalizer`]: normalizer,
  [`${F}ElementwiseProduct`]: elementwiseProduct,
  [`${F}PCAModel`]: pca,
  [`${F}ChiSqSelectorModel`]: featureSelector,
  [`${F}UnivariateFeatureSelectorModel`]: featureSelector,
  [`${F}VarianceThresholdSelectorModel`]: featureSelector,
  [`${F}VectorSlicer`]: vectorSlicer,
  [`${F}ImputerModel`]: imputer,
  [`${F}Bucketizer`]: bucketizer,
  [`${F}Binarizer`]: binarizer,
  [`${F}OneHotEncoderModel`]: oneHotEncoderModel,
  [`${F}OneHotEncoder`]: legacyOneHotEncoder,
  [`${F}VectorIndexerModel`]: vectorIndexer,
  [`${F}Tokenizer`]: tokenizer,
  [`${F}RegexTokenizer`]: regexTokenizer,
  [`${F}StopWordsRemover`]: stopWordsRemover,
  [`${F}NGram`]: nGram,
  [`${F}CountVectorizerModel`]: countVectorizer,
  [`${F}HashingTF`]: hashingTF,
  [`${F}IDFModel`]: idf,
  [`${F}Word2VecModel`]: word2Vec,
  [`${F}SQLTransformer`]: sqlTransformer,
  [`${F}RFormulaModel`]: rFormula,
  [`${F}ColumnPruner`]: metadataOnly,
  [`${F}VectorAttributeRewriter`]: metadataOnly,
  [`${C}DecisionTreeClassificationModel`]: decisionTreeClassifier,
  [`${C}RandomForestClassificationModel`]: randomForestClassifier,
  [`${C}GBTClassificationModel`]: gbtClassifier,
  [`${C}LogisticRegressionModel`]: logisticRegression,
  [`${C}LinearSVCModel`]: linearSVC,
  [`${C}NaiveBayesModel`]: naiveBayes,
  [`${C}MultilayerPerceptronClassificationModel`]: multilayerPerceptron,
  [`${R}DecisionTreeRegressionModel`]: decisionTreeRegressor,
  [`${R}RandomForestRegressionModel`]: randomForestRegressor,
  [`${R}GBTRegressionModel`]: gbtRegressor,
  [`${R}LinearRegressionModel`]: linearRegression,
  [`${R}GeneralizedLinearRegressionModel`]: generalizedLinearRegression,
  [`${R}IsotonicRegressionModel`]: isotonicRegression,
  ['org.apache.spark.ml.clustering.KMeansModel']: kMeans,
};

export const PIPELINE_CLASS = 'org.apache.spark.ml.PipelineModel';
export const TUNING_CLASSES = new Set([
  'org.apache.spark.ml.tuning.CrossValidatorModel',
  'org.apache.spark.ml.tuning.TrainValidationSplitModel',
]);
