using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading.Tasks;
using System.Transactions;
using NHKeepAlive.NHibernate.Tests.Infrastructure;
using NUnit.Framework;

namespace NHKeepAlive.NHibernate.Tests;

/// <summary>
/// Issue 23 through NHibernate (its default system-transaction factory, which enlists each session's
/// connection in the ambient transaction): on a pool of one connection, scopes disposed without
/// <c>Complete</c> persist nothing, completed scopes write their rows, and an ordinary unit of work on the
/// same connection after each works; rows are counted from the server.
/// </summary>
[TestFixture(MySqlDriver.MySqlData)]
[TestFixture(MySqlDriver.MySqlConnector)]
public class TransactionScopeTests(MySqlDriver driver) : NHibernateTest(driver)
{
    private const int Rounds = 5;

    [SetUp]
    public void NotUnderMono()
    {
        // Under Mono (net48 here), NHibernate's system-transaction support fails these scopes on both drivers
        // (measured: 15 of 15 errors with async flow, NullReferenceException inside Mono's System.Transactions;
        // the XA branches MySqlConnector leaves then hold locks that stall every later test). The pool-level
        // TransactionScope tests run under Mono; through NHibernate this stays open (see the closing note of
        // issue 23).
        if (Type.GetType("Mono.Runtime") is not null)
            Assert.Ignore("TransactionScope through NHibernate is not run under Mono: Mono's System.Transactions fails NHibernate's scopes (async flow: NullReferenceException), and the XA branches left behind stall later tests");
    }


    [Test]
    public void Scopes_not_completed_and_completed_then_an_ordinary_unit_of_work_on_a_pool_of_one()
    {
        using var factory = Mappings.Configuration(Driver).UseKeepAlive(o => o.MaxPoolSize = 1).BuildSessionFactory();
        var errors = new List<Exception>();
        for (var round = 0; round < Rounds; round++)
        {
            Capture(errors, () =>
            {
                using var scope = new TransactionScope();
                using var session = factory.OpenSession();
                session.Save(new Note { Text = "rolledback" });
                session.Save(new Note { Text = "rolledback" });
            });
            Capture(errors, () =>
            {
                using var scope = new TransactionScope();
                using (var session = factory.OpenSession())
                {
                    session.Save(new Note { Text = "completed" });
                    session.Save(new Note { Text = "completed" });
                }

                scope.Complete();
            });
            Capture(errors, () => Save(factory, "ordinary"));
        }

        AssertTable(errors, "sync");
        PoolAccounting.AssertPoolMatchesServer(_admin, PoolOf(factory));
    }

    [Test]
    public async Task Async_flow_scopes_with_the_async_API_the_same()
    {
        using var factory = Mappings.Configuration(Driver).UseKeepAlive(o => o.MaxPoolSize = 1).BuildSessionFactory();
        var errors = new List<Exception>();
        for (var round = 0; round < Rounds; round++)
        {
            await CaptureAsync(errors, async () =>
            {
                using var scope = new TransactionScope(TransactionScopeAsyncFlowOption.Enabled);
                using var session = factory.OpenSession();
                await session.SaveAsync(new Note { Text = "rolledback" });
                await session.SaveAsync(new Note { Text = "rolledback" });
            });
            await CaptureAsync(errors, async () =>
            {
                using var scope = new TransactionScope(TransactionScopeAsyncFlowOption.Enabled);
                using (var session = factory.OpenSession())
                {
                    await session.SaveAsync(new Note { Text = "completed" });
                    await session.SaveAsync(new Note { Text = "completed" });
                }

                scope.Complete();
            });
            await CaptureAsync(errors, () => SaveAsync(factory, "ordinary"));
        }

        AssertTable(errors, "async flow");
        PoolAccounting.AssertPoolMatchesServer(_admin, PoolOf(factory));
    }

    /// <summary>
    /// Two sessions one after the other in one scope, on a pool of two (with a pool of one the second session
    /// would wait for the first's connection, which the scope holds until it ends: not tested). MySql.Data runs the
    /// scope as a local transaction and refuses a second connection; MySqlConnector runs each connection as an XA
    /// branch of the one transaction.
    /// </summary>
    [Test]
    public void Two_sequential_sessions_in_one_scope()
    {
        using var factory = Mappings.Configuration(Driver).UseKeepAlive(o => o.MaxPoolSize = 2).BuildSessionFactory();
        Exception? error = null;
        try
        {
            using var scope = new TransactionScope();
            using (var session = factory.OpenSession())
                session.Save(new Note { Text = "first" });
            using (var session = factory.OpenSession())
                session.Save(new Note { Text = "second" });
            scope.Complete();
        }
        catch (Exception e)
        {
            error = e;
        }

        var (first, second) = (Rows("first"), Rows("second"));
        TestContext.Progress.WriteLine($"{Driver}, two sequential sessions in one scope: {ServerErrors.Describe(error)}; rows first {first}, second {second}");
        if (Driver == MySqlDriver.MySqlData)
        {
            var refusal = ServerErrors.Chain(error).OfType<NotSupportedException>().FirstOrDefault();
            Assert.That(refusal, Is.Not.Null, ServerErrors.Describe(error));
            Assert.That(refusal!.Message, Does.Contain("Multiple simultaneous connections"));
            Assert.That((first, second), Is.EqualTo((0L, 0L)), "the scope never completed: nothing persisted");
        }
        else
        {
            Assert.That(error, Is.Null, error?.ToString());
            Assert.That((first, second), Is.EqualTo((1L, 1L)), "both XA branches committed with the scope");
        }

        Save(factory, "after");
        Assert.That(Rows("after"), Is.EqualTo(1), "an ordinary unit of work after the scope works");
        Assert.That(_admin.ConnectionIdsOf("XA RECOVER"), Is.Empty, "no XA transaction is left prepared on the server");
        PoolAccounting.AssertPoolMatchesServer(_admin, PoolOf(factory));
    }

    private static void Capture(List<Exception> errors, Action unit)
    {
        try
        {
            unit();
        }
        catch (Exception e)
        {
            errors.Add(e);
        }
    }

    private static async Task CaptureAsync(List<Exception> errors, Func<Task> unit)
    {
        try
        {
            await unit();
        }
        catch (Exception e)
        {
            errors.Add(e);
        }
    }

    /// <summary>The table row: rolled-back rows that persisted, completed rows written, ordinary rows, errors.</summary>
    private void AssertTable(List<Exception> errors, string mode)
    {
        var (rolledBack, completed, ordinary) = (Rows("rolledback"), Rows("completed"), Rows("ordinary"));
        TestContext.Progress.WriteLine(
            $"| NHKeepAlive, {Driver}, {mode} | {rolledBack} | {completed} of {2 * Rounds} | {ordinary} of {Rounds} | {errors.Count} of {3 * Rounds} |");
        foreach (var error in errors)
            TestContext.Progress.WriteLine($"  {ServerErrors.Describe(error)}");
        Assert.That((rolledBack, completed, ordinary, errors.Count), Is.EqualTo((0L, 2L * Rounds, (long)Rounds, 0)),
            "(rolled-back rows that persisted, completed rows, ordinary rows, errors)");
        Assert.That(_admin.ConnectionIdsOf("XA RECOVER"), Is.Empty, "no XA transaction is left prepared on the server");
    }
}
