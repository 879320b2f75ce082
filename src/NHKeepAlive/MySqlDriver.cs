namespace NHKeepAlive;

/// <summary>Which ADO.NET driver the pool opens its physical connections with.</summary>
public enum MySqlDriver
{
    /// <summary>MySql.Data if the application references it, otherwise MySqlConnector.</summary>
    Auto = 0,

    /// <summary>Oracle's MySql.Data (<c>MySql.Data.MySqlClient</c>); 8.0.x cannot talk to MariaDB 10.6+, use 26.10.0 or later there.</summary>
    MySqlData = 1,

    /// <summary>MySqlConnector (<c>MySqlConnector</c> namespace), 2.x.</summary>
    MySqlConnector = 2,
}
