# Homebrew formula for zenith: the npm package (the tarball `npm pack` makes, with dist/ and the
# oclif manifest built by its prepack script), installed into libexec with Homebrew's npm
# arguments and linked into bin. Put it in a tap (Formula/zenith.rb) and run
# `brew install <tap>/zenith`. Only its syntax is checked here (`ruby -c`, in
# test/integration/install.test.ts): no brew ran it.
#
# homepage and url are where the repository and the npm package are to be published (neither is
# yet); sha256 is that of `npm pack`'s zenith-pg-0.1.0.tgz of this version. For a release:
# `npm publish`, then sha256 = `shasum -a 256 zenith-pg-<version>.tgz` of that very tarball.
class Zenith < Formula
  desc "Git for PostgreSQL data directories: snapshots, thin clones, push/pull, PITR"
  homepage "https://github.com/zenith-pg/zenith"
  url "https://registry.npmjs.org/zenith-pg/-/zenith-pg-0.1.0.tgz"
  sha256 "18bcbe5796fd59b575ba15d06e722ec5560e52836f20da9db91d91883dfc1d8f"
  license "MIT"

  depends_on "node"
  # zenith runs postgres' own initdb and pg_ctl; it finds Homebrew's postgresql@N by itself.
  depends_on "postgresql@15"

  def install
    system "npm", "install", *std_npm_args
    bin.install_symlink libexec.glob("bin/*")
  end

  def caveats
    <<~EOS
      zenith keeps its state in ~/.zenith (set ZENITH_HOME to use another folder).
      Another major of postgres works too: brew install postgresql@16, or point
      ZENITH_PG_BIN at its bin folder.
    EOS
  end

  test do
    assert_match version.to_s, shell_output("#{bin}/zenith --version")
    ENV["ZENITH_HOME"] = (testpath/"zenith").to_s
    assert_equal "[]", shell_output("#{bin}/zenith pg list --json").strip
    assert_match "local", shell_output("#{bin}/zenith storage list")
    # A pg of its own: initdb and a server on a free port from 55432, then gone again.
    ENV["ZENITH_FIRST_PORT"] = "55432"
    assert_match "Started postgres on localhost:", shell_output("#{bin}/zenith pg create brewtest 2>&1")
    assert_match "\"running\"", shell_output("#{bin}/zenith pg list --json")
    system bin/"zenith", "pg", "destroy", "brewtest"
  end
end
