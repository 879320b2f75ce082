namespace NHKeepAlive.AspNetCoreSample.NHibernate;

/// <summary>The NHibernate part's one entity: a row of <c>sample_note</c>.</summary>
public class SampleNote
{
    /// <summary>The key, given by the server.</summary>
    public virtual long Id { get; set; }

    /// <summary>The text.</summary>
    public virtual string Text { get; set; } = string.Empty;
}
