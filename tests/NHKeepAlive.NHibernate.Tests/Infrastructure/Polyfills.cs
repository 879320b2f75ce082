#if !NET5_0_OR_GREATER
namespace System.Runtime.CompilerServices;

/// <summary>Lets the records of the linked cluster harness compile on net48.</summary>
internal static class IsExternalInit
{
}
#endif
