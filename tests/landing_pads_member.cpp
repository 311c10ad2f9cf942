// The member that tests/landing_pads.cpp binds: compiled without landing pads (tests/CMakeLists.txt), as a compiler
// may emit a function that is only ever called directly. Its own translation unit, so that the trampoline calling it
// is a tail jump and cannot inline it.
namespace landing_pads_test
{
	struct adder
	{
		long base;
		long add(long x);
	};

	long adder::add(long x)
	{
		return base + x;
	}
} // namespace landing_pads_test
