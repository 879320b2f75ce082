<%@ Application Inherits="NHKeepAlive.LegacySite.SiteApplication" Language="C#" %>
