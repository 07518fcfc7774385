namespace TransformerForge.Data;

/// <summary>Which part of a dataset: the leading tokens train, the trailing ones validate.</summary>
public enum DataSplit { Train, Validation }
